! Averaging a field across ranks from Fortran with the `ringdp` module.
!
! Every rank fills a 2-D array with values that depend on its rank, averages it in place
! with ringdp_allreduce, and checks the result against the average computed by hand; then
! sums a count with the ring algorithm, chosen by name. Exits non-zero on any wrong element
! or error, on every rank. Run: mpirun -np 2 ringdp-allreduce-f90
program allreduce_example
  use mpi_f08
  use ringdp
  implicit none
  integer, parameter :: rows = 317, cols = 101  ! 32,017 values: no size divides evenly
  real(8), allocatable :: field(:, :)
  integer(8) :: cells(1)
  integer :: rank, ranks, ierror, i, j, wrong
  character(len=256) :: message

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks)
  allocate (field(rows, cols))
  ! Element (i, j) on rank r is i + j + r: the average over ranks is i + j + (ranks - 1) / 2,
  ! exact in double precision for these magnitudes whatever order the sum takes.
  field = reshape([((real(i + j + rank, 8), i = 1, rows), j = 1, cols)], [rows, cols])

  call ringdp_allreduce(field, RINGDP_AVERAGE, MPI_COMM_WORLD, ierror)
  if (ierror /= RINGDP_SUCCESS) then
    call ringdp_error_string(ierror, message)
    write (0, '(a)') trim(message)
    call MPI_Abort(MPI_COMM_WORLD, 1)
  end if
  wrong = 0
  do j = 1, cols
    do i = 1, rows
      if (abs(field(i, j) - (i + j + (ranks - 1) / 2.0d0)) > 0) wrong = wrong + 1
    end do
  end do

  cells = size(field)
  call ringdp_allreduce(cells, RINGDP_SUM, MPI_COMM_WORLD, ierror, algorithm='ring')
  if (ierror /= RINGDP_SUCCESS .or. cells(1) /= int(ranks, 8) * rows * cols) wrong = wrong + 1

  call MPI_Allreduce(MPI_IN_PLACE, wrong, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD)
  if (rank == 0) print '(a,i0,a,i0,a,a)', 'averaged ', rows * cols, ' values over ', ranks, &
      ' ranks with ringdp: ', merge('ok   ', 'WRONG', wrong == 0)
  deallocate (field)
  call MPI_Finalize()
  if (wrong /= 0) error stop 1
end program allreduce_example
