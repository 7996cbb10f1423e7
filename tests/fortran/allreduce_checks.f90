! What the Fortran allreduce tests share, without MPI: reproducible random inputs, the
! rounding bound a floating-point result must meet against MPI's, and a hash of results.
!
! The rounding bound. Summing p values in any order gives a result within
! gamma(p-1) * sum(|x|) of the exact sum, gamma(k) = k*u/(1 - k*u), u = epsilon/2 the unit
! roundoff; two orders (ringdp's and MPI's) are then within 2*gamma(p-1)*sum(|x|) of each
! other, which p*epsilon*sum(|x|) bounds. So, element by element, with eps = epsilon(x):
!   sum:      |ringdp - MPI| <= p * eps * sum over ranks of |x|
!   average:  |ringdp - MPI/p| <= eps * (sum over ranks of |x| + 2 |MPI/p|)
!             (the sum's bound divided by p, plus one rounding of each division)
!   product:  |ringdp - MPI| <= p * eps * |MPI| (relative, the same argument on the factors)
!   min, max and every integer result: equal.
! At one rank both results are the input itself, so they are equal there too.
module allreduce_checks
  use, intrinsic :: iso_fortran_env, only: error_unit, int64, real64
  implicit none
  private
  public :: OP_SUM, OP_AVERAGE, OP_MIN, OP_MAX, OP_PRODUCT, op_name
  public :: seed_for, random_reals, random_integers, count_beyond_bound, hash_bytes
  public :: report_failure

  ! The operations in the numbering of ringdp's RINGDP_* constants.
  integer, parameter :: OP_SUM = 0, OP_AVERAGE = 1, OP_MIN = 2, OP_MAX = 3, OP_PRODUCT = 4

contains

  function op_name(op) result(name)
    integer, intent(in) :: op
    character(len=7) :: name
    character(len=7), parameter :: names(0:4) = &
        [character(len=7) :: 'sum', 'average', 'min', 'max', 'product']
    name = 'unknown'
    if (op >= 0 .and. op <= 4) name = names(op)
  end function op_name

  !> Seeds the random generator for one test case on one rank: every rank draws different
  !> values, and a run draws the same values every time.
  subroutine seed_for(rank, case_index)
    integer, intent(in) :: rank, case_index
    integer :: n, i
    integer, allocatable :: seed(:)
    call random_seed(size=n)
    allocate(seed(n))
    seed = [(104729 * (rank + 1) + 7919 * case_index + 613 * i, i = 1, n)]
    call random_seed(put=seed)
  end subroutine seed_for

  !> Values for reals: in [-1, 1), and in [0.5, 2) for products (no overflow, no zero).
  subroutine random_reals(x, op)
    real(real64), intent(out) :: x(:)
    integer, intent(in) :: op
    call random_number(x)
    if (op == OP_PRODUCT) then
      x = 0.5_real64 + 1.5_real64 * x
    else
      x = 2 * x - 1
    end if
  end subroutine random_reals

  !> Values for integers of `bits` bits (32 or 64): sums of up to 64 ranks cannot overflow,
  !> products are of -2..2 so that up to 30 ranks cannot overflow either.
  subroutine random_integers(x, op, bits)
    integer(int64), intent(out) :: x(:)
    integer, intent(in) :: op, bits
    real(real64) :: r(size(x))
    call random_number(r)
    if (op == OP_PRODUCT) then
      x = int(floor(5 * r), int64) - 2
    else
      x = int((r - 0.5_real64) * 2.0_real64**(bits - 7), int64)
    end if
  end subroutine random_integers

  !> How many elements of `result` (ringdp's) lie outside the rounding bound (above) around
  !> `reference` (MPI's; for average MPI's sum divided by `ranks`). `abs_sum` is the sum
  !> over ranks of |x|, `eps` the epsilon of the element type.
  integer function count_beyond_bound(result, reference, abs_sum, ranks, op, eps)
    real(real64), intent(in) :: result(:), reference(:), abs_sum(:), eps
    integer, intent(in) :: ranks, op
    real(real64) :: bound(size(result))
    select case (op)
    case (OP_SUM)
      bound = ranks * eps * abs_sum
    case (OP_AVERAGE)
      bound = eps * (abs_sum + 2 * abs(reference))
    case (OP_PRODUCT)
      bound = ranks * eps * abs(reference)
    case default
      bound = 0
    end select
    count_beyond_bound = count(abs(result - reference) > bound)
  end function count_beyond_bound

  !> Folds `bytes` (the bits of a result, transfer()ed) into a running hash, in integer
  !> arithmetic that cannot overflow.
  subroutine hash_bytes(hash, bytes)
    integer(int64), intent(inout) :: hash
    integer(kind=1), intent(in) :: bytes(:)
    integer :: i
    do i = 1, size(bytes)
      hash = mod(hash * 257 + (int(bytes(i), int64) + 128), 2147483647_int64)
    end do
  end subroutine hash_bytes

  !> Counts a failed check of this rank in `failures`; the first 20 are printed to stderr,
  !> naming the rank, what was tested and what went wrong (and how many elements).
  subroutine report_failure(rank, failures, problem, what, elements)
    integer, intent(in) :: rank
    integer, intent(inout) :: failures
    character(len=*), intent(in) :: problem, what
    integer, intent(in), optional :: elements
    failures = failures + 1
    if (failures > 20) return
    if (present(elements)) then
      write (error_unit, '("rank ",i0,": FAILED: ",a,": ",a," (",i0," elements)")') rank, &
          trim(what), trim(problem), elements
    else
      write (error_unit, '("rank ",i0,": FAILED: ",a,": ",a)') rank, trim(what), trim(problem)
    end if
  end subroutine report_failure

end module allreduce_checks
