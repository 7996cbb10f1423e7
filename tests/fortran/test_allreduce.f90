! The `ringdp` module's ringdp_allreduce against MPI_Allreduce: every element kind and
! operation, arrays of rank 0 (a scalar), 1, 2, 3 and 7 with awkward sizes (0, 1, a prime,
! 3x5x7, 257x131), each algorithm by name, both communicator forms (type(MPI_Comm) and the
! integer handle); on MPI_COMM_WORLD, on MPI_COMM_SELF and on a split communicator. Then
! communicators created, used and freed over and over: ringdp's cached duplicates must go
! with them. Exits non-zero on every rank when any rank failed a check.
program test_fortran_allreduce
  use mpi_f08
  use ringdp
  use allreduce_checks, only: OP_SUM, OP_PRODUCT
  use module_cases
  implicit none
  character(len=18), parameter :: algorithms(0:6) = [character(len=18) :: 'auto', 'ring', &
      'rd', 'mpi', 'ps', 'recursive-doubling', 'parameter-server']
  type(Tally) :: world, self, half
  type(MPI_Comm) :: split
  integer :: rank, ranks, total

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks)

  world = Tally(MPI_COMM_WORLD, 'MPI_COMM_WORLD', rank, ranks)
  call all_cases(world, 5)
  self = Tally(MPI_COMM_SELF, 'MPI_COMM_SELF', rank, 1)
  call all_cases(self, 3)
  ! Ranks of the same parity: at 3 ranks one communicator of 2 and one of 1.
  call MPI_Comm_split(MPI_COMM_WORLD, mod(rank, 2), rank, split)
  half = Tally(split, 'a split communicator', 0, 1)
  call MPI_Comm_rank(split, half%rank)
  call MPI_Comm_size(split, half%size)
  call all_cases(half, 3)
  call MPI_Comm_free(split)
  call churn(world)

  total = world%failures + self%failures + half%failures
  call MPI_Allreduce(MPI_IN_PLACE, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD)
  if (rank == 0) then
    print '(a,i0,a,i0,a,i0,a)', 'test_fortran_allreduce: ', ranks, ' ranks, ', &
        world%cases + self%cases + half%cases, ' cases on rank 0, ', total, ' failed checks'
  end if
  call MPI_Finalize()
  if (total /= 0) error stop 1

contains

  !> Every kind and operation for each array shape, the shapes in `shapes` first ones only.
  subroutine all_cases(t, shapes)
    type(Tally), intent(inout) :: t
    integer, intent(in) :: shapes
    integer :: s, op
    do s = 1, shapes
      do op = OP_SUM, OP_PRODUCT
        select case (s)
        case (1)
          call each_kind(t, [257, 131], op)
        case (2)
          call each_kind(t, [integer ::], op)
        case (3)
          call each_kind(t, [1009], op)
        case (4)
          call each_kind(t, [0], op)
        case default
          call each_kind(t, [1], op)
          call each_kind(t, [3, 5, 7], op)
          call each_kind(t, [2, 1, 3, 1, 2, 3, 2], op)
        end select
      end do
    end do
  end subroutine all_cases

  !> One case per kind; the algorithm and the communicator form change from case to case.
  subroutine each_kind(t, shape, op)
    type(Tally), intent(inout) :: t
    integer, intent(in) :: shape(:), op
    call case_float32(t, shape, op, trim(algorithms(mod(t%cases, 7))), mod(t%cases, 2) == 1)
    call case_float64(t, shape, op, trim(algorithms(mod(t%cases, 7))), mod(t%cases, 2) == 1)
    call case_int32(t, shape, op, trim(algorithms(mod(t%cases, 7))), mod(t%cases, 2) == 1)
    call case_int64(t, shape, op, trim(algorithms(mod(t%cases, 7))), mod(t%cases, 2) == 1)
  end subroutine each_kind

  !> 60 communicators duplicated, reduced on and freed. A communicator's integer handle is
  !> its slot in Open MPI's table of communicators, lowest free slot first: if ringdp's
  !> duplicates (two MPI communicators each) outlived their communicator, the slot of a
  !> communicator made afterwards would have moved up by about 120.
  subroutine churn(t)
    type(Tally), intent(inout) :: t
    type(MPI_Comm) :: comm
    integer :: i, before, after, ierror
    integer(8) :: x(4096)
    before = probe_slot()
    do i = 1, 60
      call MPI_Comm_dup(MPI_COMM_WORLD, comm)
      x = i
      call ringdp_allreduce(x, RINGDP_SUM, comm, ierror)
      if (ierror /= RINGDP_SUCCESS .or. any(x /= int(i, 8) * t%size)) then
        call fail(t, 'wrong sum or an error', 'communicator churn')
      end if
      call MPI_Comm_free(comm)
    end do
    after = probe_slot()
    if (after > before + 4) call fail(t, 'communicators leaked', 'communicator churn', after - before)
  end subroutine churn

  integer function probe_slot()
    type(MPI_Comm) :: probe
    call MPI_Comm_dup(MPI_COMM_WORLD, probe)
    probe_slot = probe%MPI_VAL
    call MPI_Comm_free(probe)
  end function probe_slot

end program test_fortran_allreduce
