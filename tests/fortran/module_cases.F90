! The test cases of the `ringdp` module's allreduce, one subroutine per element kind, made
! from one template (module_case.inc) by the preprocessor, and what they share.
module module_cases
  use, intrinsic :: iso_c_binding, only: c_double, c_float, c_int32_t, c_int64_t
  use, intrinsic :: iso_fortran_env, only: error_unit, int32, int64, real64
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

  !> Records a failed check on this rank; the first 20 are printed, naming the rank.
  subroutine fail(t, problem, what, elements)
    type(Tally), intent(inout) :: t
    character(len=*), intent(in) :: problem, what
    integer, intent(in), optional :: elements
    t%failures = t%failures + 1
    if (t%failures > 20) return
    if (present(elements)) then
      write (error_unit, '("rank ",i0,": FAILED: ",a,": ",a," (",i0," elements)")') &
          t%rank, trim(what), trim(problem), elements
    else
      write (error_unit, '("rank ",i0,": FAILED: ",a,": ",a)') t%rank, trim(what), trim(problem)
    end if
  end subroutine fail

  !> MPI's operation for the reference result; MPI has no average: its sum, divided after.
  type(MPI_Op) function reference_op(op)
    integer, intent(in) :: op
    select case (op)
    case (OP_MIN)
      reference_op = MPI_MIN
    case (OP_MAX)
      reference_op = MPI_MAX
    case (OP_PRODUCT)
      reference_op = MPI_PROD
    case default
      reference_op = MPI_SUM
    end select
  end function reference_op

#define CASE_NAME case_float32
#define ELEMENT real(c_float)
#define MPI_ELEMENT MPI_REAL
#define KIND_LABEL 'real(4)'
#define IS_REAL 1
#define BITS 32
#define BITS_KIND int32
#include "module_case.inc"
#undef CASE_NAME
#undef ELEMENT
#undef MPI_ELEMENT
#undef KIND_LABEL
#undef IS_REAL
#undef BITS
#undef BITS_KIND

#define CASE_NAME case_float64
#define ELEMENT real(c_double)
#define MPI_ELEMENT MPI_DOUBLE_PRECISION
#define KIND_LABEL 'real(8)'
#define IS_REAL 1
#define BITS 64
#define BITS_KIND int64
#include "module_case.inc"
#undef CASE_NAME
#undef ELEMENT
#undef MPI_ELEMENT
#undef KIND_LABEL
#undef IS_REAL
#undef BITS
#undef BITS_KIND

#define CASE_NAME case_int32
#define ELEMENT integer(c_int32_t)
#define MPI_ELEMENT MPI_INTEGER4
#define KIND_LABEL 'integer(4)'
#define IS_REAL 0
#define BITS 32
#define BITS_KIND int32
#include "module_case.inc"
#undef CASE_NAME
#undef ELEMENT
#undef MPI_ELEMENT
#undef KIND_LABEL
#undef IS_REAL
#undef BITS
#undef BITS_KIND

#define CASE_NAME case_int64
#define ELEMENT integer(c_int64_t)
#define MPI_ELEMENT MPI_INTEGER8
#define KIND_LABEL 'integer(8)'
#define IS_REAL 0
#define BITS 64
#define BITS_KIND int64
#include "module_case.inc"

end module module_cases
