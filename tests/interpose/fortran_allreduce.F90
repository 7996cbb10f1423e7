! An unmodified Fortran MPI program, built three times: with mpif.h (FLAVOR_MPIF_H), with
! `use mpi` (FLAVOR_USE_MPI) and with `use mpi_f08` (FLAVOR_F08); it knows nothing of ringdp.
!
! Served calls: MPI_Allreduce with MPI_SUM, MPI_PROD, MPI_MIN and MPI_MAX on MPI_REAL,
! MPI_DOUBLE_PRECISION, MPI_INTEGER and MPI_INTEGER8 (and MPI_REAL4, MPI_REAL8, MPI_INTEGER4
! on some cases), 1, 1000 and 33,667 elements, in place (Fortran's MPI_IN_PLACE) and from a
! separate send buffer, on random data; each result is compared with PMPI_Allreduce (MPI's
! own entry point, which the interposer never sees) on the same data: equal for integers,
! MIN and MAX, within the rounding bound of tests/fortran/allreduce_checks.f90 for sums and
! products; bit-identical on every rank. `use mpi` also calls the other names libmpi_mpifh
! exports (mpi_allreduce, mpi_allreduce__, MPI_ALLREDUCE); mpi_f08 also calls without
! ierror. Calls MPI must get untouched: MPI_MAXLOC on MPI_2REAL, a user-defined operation,
! a derived datatype, MPI_LAND on MPI_LOGICAL, a count of 0; each compared with
! PMPI_Allreduce. Run with RINGDP_INTERPOSE_MIN_BYTES=0 (every supported call is served).
!
! Options, as for the C programs (harness.h): --expect FILE (rank 0 writes how many calls
! each rank made that the interposer must serve and pass) and --hash FILE (a hash of the
! results that must be the same with and without ringdp: integers, MIN, MAX, passed calls).
! The bookkeeping uses MPI_Reduce and MPI_Bcast, never MPI_Allreduce.
program fortran_allreduce
#if defined(FLAVOR_F08)
  use mpi_f08
#elif defined(FLAVOR_USE_MPI)
  use mpi
#endif
  use, intrinsic :: iso_c_binding, only: c_double, c_int
  use, intrinsic :: iso_fortran_env, only: int8, int32, int64, real64
  use allreduce_checks
  implicit none
#if defined(FLAVOR_MPIF_H)
  include 'mpif.h'
#endif
#if defined(FLAVOR_F08)
#define HANDLE(T) type(T)
#else
#define HANDLE(T) integer
#endif
#if defined(FLAVOR_USE_MPI)
  ! The other names under which libmpi_mpifh exports MPI_ALLREDUCE (other compilers' name
  ! mangling), called directly: the interposer defines each of them.
  interface
    subroutine allreduce_no_underscore(sendbuf, recvbuf, count, datatype, op, comm, ierror) &
        bind(C, name='mpi_allreduce')
      import :: c_double, c_int
      real(c_double) :: sendbuf(*), recvbuf(*)
      integer(c_int) :: count, datatype, op, comm, ierror
    end subroutine allreduce_no_underscore
    subroutine allreduce_two_underscores(sendbuf, recvbuf, count, datatype, op, comm, ierror) &
        bind(C, name='mpi_allreduce__')
      import :: c_double, c_int
      real(c_double) :: sendbuf(*), recvbuf(*)
      integer(c_int) :: count, datatype, op, comm, ierror
    end subroutine allreduce_two_underscores
    subroutine allreduce_upper_case(sendbuf, recvbuf, count, datatype, op, comm, ierror) &
        bind(C, name='MPI_ALLREDUCE')
      import :: c_double, c_int
      real(c_double) :: sendbuf(*), recvbuf(*)
      integer(c_int) :: count, datatype, op, comm, ierror
    end subroutine allreduce_upper_case
  end interface
#endif
  integer :: rank, ranks, ierror, failures, total, cases, c, op
  integer :: served_calls, served_bytes, passed_calls
  integer(int64) :: hash
  integer, parameter :: counts(3) = [1, 1000, 33667]
  character(len=400) :: expect_path, hash_path

  call MPI_Init(ierror)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierror)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks, ierror)
  failures = 0
  cases = 0
  served_calls = 0
  served_bytes = 0
  passed_calls = 0
  hash = 1
  call read_options()

  do c = 1, size(counts)
    do op = OP_SUM, OP_PRODUCT
      if (op == OP_AVERAGE) cycle  ! MPI has no average
      call case_real32(counts(c), op, mod(op, 2) == 0, MPI_REAL, 'MPI_REAL')
      call case_real64(counts(c), op, mod(op, 2) == 1, MPI_DOUBLE_PRECISION, &
                       'MPI_DOUBLE_PRECISION')
      call case_int32(counts(c), op, mod(op + c, 2) == 0, MPI_INTEGER, 'MPI_INTEGER')
      call case_int64(counts(c), op, mod(op + c, 2) == 1, MPI_INTEGER8, 'MPI_INTEGER8')
    end do
  end do
  call case_real32(1000, OP_SUM, .true., MPI_REAL4, 'MPI_REAL4')
  call case_real64(1000, OP_MAX, .false., MPI_REAL8, 'MPI_REAL8')
  call case_int32(1000, OP_MIN, .true., MPI_INTEGER4, 'MPI_INTEGER4')
  call other_names()
  call passed_untouched()

  call finish()

contains

#define CASE_NAME case_real32
#define ELEMENT real(4)
#define KIND_LABEL 'real(4)'
#define IS_REAL 1
#define BITS 32
#define BITS_KIND int32
#include "fortran_case.inc"

#define CASE_NAME case_real64
#define ELEMENT real(8)
#define KIND_LABEL 'real(8)'
#define IS_REAL 1
#define BITS 64
#define BITS_KIND int64
#include "fortran_case.inc"

#define CASE_NAME case_int32
#define ELEMENT integer(4)
#define KIND_LABEL 'integer(4)'
#define IS_REAL 0
#define BITS 32
#define BITS_KIND int32
#include "fortran_case.inc"

#define CASE_NAME case_int64
#define ELEMENT integer(8)
#define KIND_LABEL 'integer(8)'
#define IS_REAL 0
#define BITS 64
#define BITS_KIND int64
#include "fortran_case.inc"

#include "reference_op.inc"

  !> The calls that are served although they look different: the other names of
  !> MPI_ALLREDUCE (`use mpi`), a call without ierror (mpi_f08).
  subroutine other_names()
    real(8) :: x(1000), y(1000), reference(1000)
    integer :: i
    x = [(real(i * (rank + 1), 8), i = 1, 1000)]
    reference = [(real(i, 8) * ranks * (ranks + 1) / 2, i = 1, 1000)]  ! exact sums
#if defined(FLAVOR_USE_MPI)
    y = 0
    call allreduce_no_underscore(x, y, 1000, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierror)
    call served(y, reference, 'mpi_allreduce')
    y = 0
    call allreduce_two_underscores(x, y, 1000, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, &
                                   ierror)
    call served(y, reference, 'mpi_allreduce__')
    y = 0
    call allreduce_upper_case(x, y, 1000, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierror)
    call served(y, reference, 'MPI_ALLREDUCE')
#elif defined(FLAVOR_F08)
    y = x
    ierror = MPI_SUCCESS
    call MPI_Allreduce(MPI_IN_PLACE, y, 1000, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD)
    call served(y, reference, 'mpi_f08 without ierror')
#else
    y = x
    call MPI_Allreduce(MPI_IN_PLACE, y, 1000, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierror)
    call served(y, reference, 'mpif.h, in place')
#endif
  end subroutine other_names

  subroutine served(y, reference, what)
    real(8), intent(in) :: y(:), reference(:)
    character(len=*), intent(in) :: what
    served_calls = served_calls + 1
    served_bytes = served_bytes + 8 * size(y)
    if (ierror /= MPI_SUCCESS .or. any(y /= reference)) call fail('wrong sum or an error', what)
    call hash_bytes(hash, transfer(y, [0_int8]))
  end subroutine served

#include "fortran_passed.inc"

  !> Records a failed check on this rank (the first 20 are printed, naming the rank).
  subroutine fail(problem, what, elements)
    character(len=*), intent(in) :: problem, what
    integer, intent(in), optional :: elements
    call report_failure(rank, failures, problem, what, elements)
  end subroutine fail

  subroutine read_options()
    integer :: i
    character(len=400) :: argument
    expect_path = ''
    hash_path = ''
    do i = 1, command_argument_count() - 1
      call get_command_argument(i, argument)
      if (argument == '--expect') call get_command_argument(i + 1, expect_path)
      if (argument == '--hash') call get_command_argument(i + 1, hash_path)
    end do
  end subroutine read_options

  !> Collective: writes the files, prints a summary, and stops with the same status on every
  !> rank (non-zero when any rank failed a check).
  subroutine finish()
    integer :: unit
    call MPI_Reduce(failures, total, 1, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD, ierror)
    call MPI_Bcast(total, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierror)
    if (rank == 0) then
      if (len_trim(expect_path) > 0) then
        open (newunit=unit, file=trim(expect_path), status='replace', action='write')
        write (unit, '("served_calls ",i0,/,"served_bytes ",i0,/,"passed_calls ",i0)') &
            served_calls, served_bytes, passed_calls
        close (unit)
      end if
      if (len_trim(hash_path) > 0) then
        open (newunit=unit, file=trim(hash_path), status='replace', action='write')
        write (unit, '(i0)') hash
        close (unit)
      end if
      print '(a,i0,a,i0,a,i0,a,i0,a)', 'fortran_allreduce: ', ranks, ' ranks: ', served_calls, &
          ' calls the interposer should serve, ', passed_calls, ' it should pass; ', total, &
          ' failed checks'
    end if
    call MPI_Finalize(ierror)
    if (total /= 0) error stop 1
  end subroutine finish

end program fortran_allreduce

! The user-defined operation: inoutvec = invec + inoutvec, element by element.
#if defined(FLAVOR_F08)
subroutine user_sum(invec, inoutvec, len, datatype)
  use, intrinsic :: iso_c_binding, only: c_f_pointer, c_ptr
  use mpi_f08, only: MPI_Datatype
  implicit none
  type(c_ptr), value :: invec, inoutvec
  integer :: len
  type(MPI_Datatype) :: datatype
  integer, pointer :: a(:), b(:)
  call c_f_pointer(invec, a, [len])
  call c_f_pointer(inoutvec, b, [len])
  b = b + a
end subroutine user_sum
#else
subroutine user_sum(invec, inoutvec, len, datatype)
  implicit none
  integer :: len, datatype
  integer :: invec(len), inoutvec(len)
  inoutvec = inoutvec + invec
end subroutine user_sum
#endif
