!> ringdp for Fortran: `use ringdp`, then
!>
!>   call ringdp_allreduce(array, op, comm, ierror [, algorithm])
!>
!> reduces `array` in place across the ranks of `comm`: every rank ends with the same bits.
!> `array`: real(c_float), real(c_double), integer(c_int32_t) or integer(c_int64_t) (real(4),
!> real(8), integer(4), integer(8) with gfortran), of any rank, a scalar too. A
!> non-contiguous actual argument (a strided section) is reduced through the contiguous
!> copy the compiler makes on entry and copies back on return: correct, but a copy.
!> `op`: RINGDP_SUM, RINGDP_AVERAGE (real kinds only), RINGDP_MIN, RINGDP_MAX, RINGDP_PRODUCT.
!> `comm`: type(MPI_Comm) of mpi_f08, or the integer handle of `use mpi` and mpif.h.
!> `ierror`: RINGDP_SUCCESS (0) or one of the RINGDP_ERROR_* codes;
!> ringdp_error_string(ierror, message) gives its text (the rank and the cause).
!> `algorithm`: a name as RINGDP_ALGORITHM takes it ("auto", "ring", "rd", "mpi", "ps", ...);
!> without it, "auto".
!>
!> Collective: every rank of `comm` calls it with the same size, kind, op and algorithm.
!> ringdp reduces on its own duplicate of `comm`, made at the first call on that
!> communicator and cached on it (freed by MPI_Comm_free(comm), or at MPI_Finalize).
!>
!> A thin layer over ringdp's C API (ringdp/ringdp.h) through iso_c_binding: one specific
!> procedure per kind and communicator form, each an assumed-rank `contiguous` dummy (see
!> the note at `contains`), made from one template (allreduce_kind.inc) by the preprocessor.
module ringdp
  use, intrinsic :: iso_c_binding, only: c_char, c_double, c_float, c_int, c_int32_t, &
                                         c_int64_t, c_loc, c_null_char, c_null_ptr, c_ptr, &
                                         c_size_t
  use mpi_f08, only: MPI_Comm
  implicit none
  private

  public :: ringdp_allreduce, ringdp_error_string
  public :: RINGDP_SUM, RINGDP_AVERAGE, RINGDP_MIN, RINGDP_MAX, RINGDP_PRODUCT
  public :: RINGDP_SUCCESS, RINGDP_ERROR_NULL_ARGUMENT, RINGDP_ERROR_INVALID_ARGUMENT, &
            RINGDP_ERROR_MPI, RINGDP_ERROR_MISMATCH, RINGDP_ERROR_NO_MEMORY, &
            RINGDP_ERROR_INTERNAL, RINGDP_ERROR_IO, RINGDP_ERROR_FAILED

  ! The values of ringdp.h's enumerators, which are stable.
  integer, parameter :: RINGDP_SUM = 0, RINGDP_AVERAGE = 1, RINGDP_MIN = 2, RINGDP_MAX = 3, &
                        RINGDP_PRODUCT = 4
  integer, parameter :: RINGDP_SUCCESS = 0, RINGDP_ERROR_NULL_ARGUMENT = 1, &
                        RINGDP_ERROR_INVALID_ARGUMENT = 2, RINGDP_ERROR_MPI = 3, &
                        RINGDP_ERROR_MISMATCH = 4, RINGDP_ERROR_NO_MEMORY = 5, &
                        RINGDP_ERROR_INTERNAL = 6, RINGDP_ERROR_IO = 7, RINGDP_ERROR_FAILED = 8
  integer(c_int), parameter :: FLOAT32 = 0, FLOAT64 = 1, INT32 = 2, INT64 = 3  ! ringdp_datatype
  integer(c_int), parameter :: AUTO = 0  ! ringdp_algorithm

  interface ringdp_allreduce
    module procedure allreduce_float32, allreduce_float64, allreduce_int32, allreduce_int64
    module procedure allreduce_float32_handle, allreduce_float64_handle, &
                     allreduce_int32_handle, allreduce_int64_handle
  end interface ringdp_allreduce

  interface
    integer(c_int) function c_allreduce_comm_f(comm, data, count, type, op, algorithm) &
        bind(C, name="ringdp_allreduce_comm_f")
      import :: c_int, c_ptr, c_size_t
      integer(c_int), value :: comm
      type(c_ptr), value :: data
      integer(c_size_t), value :: count
      integer(c_int), value :: type, op, algorithm
    end function c_allreduce_comm_f

    integer(c_int) function c_algorithm_from_name(name, algorithm) &
        bind(C, name="ringdp_algorithm_from_name")
      import :: c_char, c_int
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_int), intent(out) :: algorithm
    end function c_algorithm_from_name

    integer(c_size_t) function c_error_string(code, buffer, size) &
        bind(C, name="ringdp_error_string")
      import :: c_char, c_int, c_size_t
      integer(c_int), value :: code
      character(kind=c_char), dimension(*), intent(out) :: buffer
      integer(c_size_t), value :: size
    end function c_error_string
  end interface

contains

  ! Any rank with one specific per kind: an assumed-rank dummy (dimension(..), Fortran 2018),
  ! which gfortran supports since version 9 with size(), c_loc() and the `contiguous`
  ! attribute: a non-contiguous actual is copied in and out by the caller, as the test of a
  ! strided section checks. The alternative, one assumed-shape specific per rank, would take
  ! 15 ranks x 4 kinds x 2 communicator forms and still leave scalars out.

  ! The two specifics of each kind, from one template.
#define ELEMENT real(c_float)
#define DATATYPE FLOAT32
#define SPECIFIC allreduce_float32
#define SPECIFIC_HANDLE allreduce_float32_handle
#include "allreduce_kind.inc"
#define ELEMENT real(c_double)
#define DATATYPE FLOAT64
#define SPECIFIC allreduce_float64
#define SPECIFIC_HANDLE allreduce_float64_handle
#include "allreduce_kind.inc"
#define ELEMENT integer(c_int32_t)
#define DATATYPE INT32
#define SPECIFIC allreduce_int32
#define SPECIFIC_HANDLE allreduce_int32_handle
#include "allreduce_kind.inc"
#define ELEMENT integer(c_int64_t)
#define DATATYPE INT64
#define SPECIFIC allreduce_int64
#define SPECIFIC_HANDLE allreduce_int64_handle
#include "allreduce_kind.inc"

  ! The call every specific makes: the algorithm's name parsed by the C API (so that an
  ! algorithm added to ringdp needs no change here), then the reduction on ringdp's
  ! duplicate cached on the communicator.
  subroutine reduce(data, count, type, op, comm, ierror, algorithm)
    type(c_ptr), intent(in) :: data
    integer(c_size_t), intent(in) :: count
    integer(c_int), intent(in) :: type
    integer, intent(in) :: op, comm
    integer, intent(out) :: ierror
    character(len=*), intent(in), optional :: algorithm
    integer(c_int) :: algo
    algo = AUTO
    if (present(algorithm)) then
      ierror = int(c_algorithm_from_name(trim(algorithm) // c_null_char, algo))
      if (ierror /= RINGDP_SUCCESS) return
    end if
    ierror = int(c_allreduce_comm_f(int(comm, c_int), data, count, type, int(op, c_int), algo))
  end subroutine reduce

  !> The text of error `code`: the full message of this thread's last ringdp failure (with
  !> the rank and the cause) when `code` is that failure's code, else a short description.
  !> Cut to len(message), padded with blanks. Local.
  subroutine ringdp_error_string(code, message)
    integer, intent(in) :: code
    character(len=*), intent(out) :: message
    character(kind=c_char) :: buffer(len(message) + 1)
    integer(c_size_t) :: length
    integer :: i
    length = c_error_string(int(code, c_int), buffer, size(buffer, kind=c_size_t))
    message = ' '
    do i = 1, int(min(length, int(len(message), c_size_t)))
      message(i:i) = buffer(i)
    end do
  end subroutine ringdp_error_string

end module ringdp
