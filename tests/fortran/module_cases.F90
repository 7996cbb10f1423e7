! The test cases of the `ringdp` module's allreduce, one subroutine per element kind, made
! from one template (module_case.inc) by the preprocessor, and what they share.
module module_cases
  use, intrinsic :: iso_c_binding, only: c_double, c_float, c_int32_t, c_int64_t
  use, intrinsic :: iso_fortran_env, only: int32, int64, real64
  use mpi_f08
  use ringdp
  use allreduce_checks
  implicit none
  private
  public :: Tally, case_float32, case_float64, case_int32, case_int64, fail

  !> A communicator under test and this rank's count of cases and failures on it.
  type :: Tally
    type(MPI_Comm) :: comm
    character(len=40) :: label = ''
    integer :: rank = 0, size = 1, cases = 0, failures = 0
  end type Tally

contains

  !> Records a failed check on this rank (the first 20 are printed, naming the rank).
  subroutine fail(t, problem, what, elements)
    type(Tally), intent(inout) :: t
    character(len=*), intent(in) :: problem, what
    integer, intent(in), optional :: elements
    call report_failure(t%rank, t%failures, problem, what, elements)
  end subroutine fail

#define HANDLE(T) type(T)
#include "reference_op.inc"

#define CASE_NAME case_float32
#define ELEMENT real(c_float)
#define MPI_ELEMENT MPI_REAL
#define KIND_LABEL 'real(4)'
#define IS_REAL 1
#define BITS 32
#define BITS_KIND int32
#include "module_case.inc"

#define CASE_NAME case_float64
#define ELEMENT real(c_double)
#define MPI_ELEMENT MPI_DOUBLE_PRECISION
#define KIND_LABEL 'real(8)'
#define IS_REAL 1
#define BITS 64
#define BITS_KIND int64
#include "module_case.inc"

#define CASE_NAME case_int32
#define ELEMENT integer(c_int32_t)
#define MPI_ELEMENT MPI_INTEGER4
#define KIND_LABEL 'integer(4)'
#define IS_REAL 0
#define BITS 32
#define BITS_KIND int32
#include "module_case.inc"

#define CASE_NAME case_int64
#define ELEMENT integer(c_int64_t)
#define MPI_ELEMENT MPI_INTEGER8
#define KIND_LABEL 'integer(8)'
#define IS_REAL 0
#define BITS 64
#define BITS_KIND int64
#include "module_case.inc"

end module module_cases
