! An outside Fortran program using the installed `ringdp` module: it must compile with only
! the installed ringdp.mod and link with only libringdp_fortran and MPI's Fortran bindings.
program consumer
  use mpi
  use ringdp
  implicit none
  integer :: rank, ranks, ierror
  real(8) :: x(1000)
  call MPI_Init(ierror)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierror)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks, ierror)
  x = rank
  call ringdp_allreduce(x, RINGDP_SUM, MPI_COMM_WORLD, ierror, algorithm='ring')
  if (ierror /= RINGDP_SUCCESS .or. any(abs(x - ranks * (ranks - 1) / 2.0d0) > 0)) error stop 1
  call MPI_Finalize(ierror)
  if (rank == 0) print '(a)', 'consumer_fortran: ok'
end program consumer
