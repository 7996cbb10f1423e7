! Errors of the `ringdp` module come back as codes, the same on every rank, never as a crash
! or a hang; written against `use mpi` (integer handles), the other communicator form.
!   - an unknown op, an unknown algorithm name, average on integers: RINGDP_ERROR_INVALID_
!     ARGUMENT before any communication, the array untouched, ringdp_error_string naming
!     the cause;
!   - a freed communicator: MPI_Comm_free sets the handle to MPI_COMM_NULL, and a copy of
!     the old handle names no communicator any more: both RINGDP_ERROR_INVALID_ARGUMENT;
!   - an intercommunicator (2 ranks or more): RINGDP_ERROR_INVALID_ARGUMENT;
!   - a non-contiguous array cannot reach ringdp: the `contiguous` dummy makes the compiler
!     pass a contiguous copy and copy the result back, so a strided section and a pointer
!     with a negative stride are reduced correctly, the elements between left untouched.
! After the errors the same calls succeed. Exits non-zero on every rank when any rank
! failed a check.
program test_fortran_errors
  use mpi
  use ringdp
  implicit none
  integer :: rank, ranks, ierror, failures, total, i
  integer :: comm, stale, local, inter
  real(8) :: x(100), before(100)
  real(8), target :: strided(1000)
  real(8), pointer :: backwards(:)
  integer(4) :: counts(37)
  character(len=300) :: message
  character(len=10) :: short

  call MPI_Init(ierror)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierror)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks, ierror)
  failures = 0
  x = [(real(i + rank, 8), i = 1, 100)]
  before = x

  ! An unknown op: nothing sent, nothing changed.
  call ringdp_allreduce(x, 7, MPI_COMM_WORLD, ierror)
  call ringdp_error_string(ierror, message)
  call expect(ierror == RINGDP_ERROR_INVALID_ARGUMENT .and. all(x == before) .and. &
              index(message, 'unknown ringdp_op 7') > 0, 'unknown op', message)
  ! The message is cut to the string's length; code 0 reads "success".
  call ringdp_error_string(ierror, short)
  call expect(short == message(1:10), 'message cut to the length of the string', short)
  call ringdp_error_string(RINGDP_SUCCESS, message)
  call expect(message == 'success', 'text of RINGDP_SUCCESS', message)

  ! An unknown algorithm: the accepted names are listed.
  call ringdp_allreduce(x, RINGDP_SUM, MPI_COMM_WORLD, ierror, algorithm='bogus')
  call ringdp_error_string(ierror, message)
  call expect(ierror == RINGDP_ERROR_INVALID_ARGUMENT .and. all(x == before) .and. &
              index(message, "'bogus'") > 0 .and. index(message, 'ring') > 0, &
              'unknown algorithm', message)

  ! Average is for real kinds.
  counts = rank
  call ringdp_allreduce(counts, RINGDP_AVERAGE, MPI_COMM_WORLD, ierror)
  call ringdp_error_string(ierror, message)
  call expect(ierror == RINGDP_ERROR_INVALID_ARGUMENT .and. all(counts == rank), &
              'average on integers', message)

  ! A freed communicator, through its MPI_COMM_NULL handle and through a stale copy.
  call MPI_Comm_dup(MPI_COMM_WORLD, comm, ierror)
  stale = comm
  call ringdp_allreduce(counts, RINGDP_SUM, comm, ierror)
  call expect(ierror == RINGDP_SUCCESS .and. all(counts == ranks * (ranks - 1) / 2), &
              'sum on a duplicate of MPI_COMM_WORLD', 'before it is freed')
  call MPI_Comm_free(comm, ierror)
  call ringdp_allreduce(counts, RINGDP_SUM, comm, ierror)
  call ringdp_error_string(ierror, message)
  call expect(comm == MPI_COMM_NULL .and. ierror == RINGDP_ERROR_INVALID_ARGUMENT .and. &
              index(message, 'freed') > 0, 'freed communicator (MPI_COMM_NULL)', message)
  call ringdp_allreduce(counts, RINGDP_SUM, stale, ierror)
  call ringdp_error_string(ierror, message)
  call expect(ierror == RINGDP_ERROR_INVALID_ARGUMENT .and. &
              all(counts == ranks * (ranks - 1) / 2), &
              'freed communicator (a stale copy of its handle)', message)

  ! An intercommunicator between the even and the odd ranks.
  if (ranks >= 2) then
    call MPI_Comm_split(MPI_COMM_WORLD, mod(rank, 2), rank, local, ierror)
    call MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, 1 - mod(rank, 2), 7, inter, ierror)
    call ringdp_allreduce(x, RINGDP_SUM, inter, ierror)
    call ringdp_error_string(ierror, message)
    call expect(ierror == RINGDP_ERROR_INVALID_ARGUMENT .and. all(x == before) .and. &
                index(message, 'intercommunicator') > 0, 'intercommunicator', message)
    call MPI_Comm_free(inter, ierror)
    call MPI_Comm_free(local, ierror)
  end if

  ! Non-contiguous arrays: every other element, and every third one backwards.
  strided = [(real(i * (rank + 1), 8), i = 1, 1000)]
  call ringdp_allreduce(strided(1:1000:2), RINGDP_SUM, MPI_COMM_WORLD, ierror)
  call expect(ierror == RINGDP_SUCCESS .and. &
              all(strided(1:1000:2) == [(real(i, 8) * ranks * (ranks + 1) / 2, i = 1, 1000, 2)]) &
              .and. all(strided(2:1000:2) == [(real(i * (rank + 1), 8), i = 2, 1000, 2)]), &
              'strided section', 'sum of every other element')
  strided = [(real(i * (rank + 1), 8), i = 1, 1000)]
  backwards => strided(1000:1:-3)
  call ringdp_allreduce(backwards, RINGDP_MAX, MPI_COMM_WORLD, ierror, 'ring')
  call expect(ierror == RINGDP_SUCCESS .and. &
              all(strided(1000:1:-3) == [(real(i * ranks, 8), i = 1000, 1, -3)]) .and. &
              all(strided(999:1:-3) == [(real(i * (rank + 1), 8), i = 999, 1, -3)]), &
              'negative stride', 'maximum of every third element, backwards')

  ! After all that, the same calls work.
  x = before
  call ringdp_allreduce(x, RINGDP_MIN, MPI_COMM_WORLD, ierror, algorithm='rd')
  call expect(ierror == RINGDP_SUCCESS .and. all(x == [(real(i, 8), i = 1, 100)]), &
              'minimum after the errors', 'rd')

  call MPI_Allreduce(failures, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierror)
  if (rank == 0) print '(a,i0,a,i0,a)', 'test_fortran_errors: ', ranks, ' ranks, ', total, &
                                        ' failed checks'
  call MPI_Finalize(ierror)
  if (total /= 0) error stop 1

contains

  subroutine expect(ok, what, detail)
    logical, intent(in) :: ok
    character(len=*), intent(in) :: what, detail
    if (ok) return
    failures = failures + 1
    write (0, '("rank ",i0,": FAILED: ",a,": ",a)') rank, what, trim(detail)
  end subroutine expect

end program test_fortran_errors
