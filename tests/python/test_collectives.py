"""ringdp's collectives from Python against mpi4py's on the same random data: every dtype,
op and algorithm, at awkward sizes (0, 1, fewer elements than ranks, a prime over several
ring segments: the tests run with RINGDP_SEGMENT_BYTES=4096), and the result bit-identical
on every rank."""

import numpy as np
import pytest
from mpi4py import MPI

import ringdp
from conftest import WORLD, all_ranks, same_on_all_ranks

DTYPES = [np.float32, np.float64, np.int32, np.int64]
ALGORITHMS = ["auto", "ring", "rd", "mpi", "ps"]
MPI_OPS = {"sum": MPI.SUM, "min": MPI.MIN, "max": MPI.MAX, "prod": MPI.PROD, "avg": MPI.SUM}
# 3: fewer elements than 4 ranks; 5003: a prime, several 4 KiB segments per rank's chunk.
SIZES = [0, 1, 3, 1000, 5003]


def ops_of(dtype):
    floating = np.issubdtype(dtype, np.floating)
    return ["sum", "min", "max", "prod"] + (["avg"] if floating else [])


def random_data(rng, dtype, op, n):
    if np.issubdtype(dtype, np.floating):
        if op == "prod":
            return rng.uniform(0.5, 1.5, n).astype(dtype)
        return rng.uniform(-1.0, 1.0, n).astype(dtype)
    if op == "prod":
        return rng.integers(-3, 4, n).astype(dtype)  # |product| <= 3^4: no overflow
    return rng.integers(-1000, 1001, n).astype(dtype)


def reference(data, op, comm=WORLD):
    """mpi4py's Allreduce of the same data (avg: the sum divided by the rank count), and
    the sum of |data| over the ranks (for tolerance()), from one Allreduce for sums."""
    if op in ("sum", "avg") and np.issubdtype(data.dtype, np.floating):
        both = np.concatenate([data, np.abs(data)])
        comm.Allreduce(MPI.IN_PLACE, both, op=MPI.SUM)
        out, magnitude = both[:data.size], both[data.size:]
    else:
        out, magnitude = np.empty_like(data), None
        comm.Allreduce(data, out, op=MPI_OPS[op])
    if op == "avg":
        out /= data.dtype.type(comm.Get_size())
    return out, magnitude


def tolerance(data, expected, op, magnitude, comm=WORLD):
    """How far two correct reductions may differ. Integers, min and max: not at all. A
    floating sum of n terms in any order is within (n-1)u*sum|x| of the exact sum (u = eps/2,
    to first order), so two of them within (n-1)*eps*sum|x| (`magnitude`: sum|x| over the
    ranks); a product likewise relative to its value; avg adds one rounding of the
    division on each side."""
    n = comm.Get_size()
    if not np.issubdtype(data.dtype, np.floating) or op in ("min", "max"):
        return np.zeros_like(expected)
    eps = np.finfo(data.dtype).eps
    if op == "prod":
        return 1.01 * (n - 1) * eps * np.abs(expected)
    bound = 1.01 * (n - 1) * eps * magnitude
    if op == "avg":
        bound = bound / n + 2 * eps * np.abs(expected)
    return bound


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_allreduce_matches_mpi4py(rng, dtype, algorithm):
    wrong, results = [], b""
    for op in ops_of(dtype):
        for n in SIZES:
            data = random_data(rng, dtype, op, n)
            expected, magnitude = reference(data, op)
            result = data.copy()
            returned = ringdp.allreduce(result, op=op, algorithm=algorithm)
            if not (returned is result and
                    np.all(np.abs(result - expected) <= tolerance(data, expected, op,
                                                                  magnitude))):
                wrong.append(f"{op} of {n}")
            results += result.tobytes()
    assert all_ranks(not wrong), f"rank {WORLD.Get_rank()}: differs from mpi4py's: {wrong}"
    assert same_on_all_ranks(results), "ranks hold different bits"


def test_allreduce_keeps_shape_and_defaults(rng):
    """A 2-D array, the default op (sum) and communicator; a 0-d array."""
    data = rng.integers(0, 100, (7, 5)).astype(np.int64)
    expected, _ = reference(data, "sum")
    ringdp.allreduce(data)
    scalar = np.array(float(WORLD.Get_rank() + 1))
    ringdp.allreduce(scalar, op="max", comm=WORLD)
    n = WORLD.Get_size()
    assert all_ranks(np.array_equal(data, expected) and data.shape == (7, 5) and scalar == n)


def test_allreduce_on_split_communicators(rng):
    """Two halves reduce independently, each on its own cached duplicate."""
    half = WORLD.Split(WORLD.Get_rank() % 2, WORLD.Get_rank())
    data = rng.uniform(-1, 1, 999)
    expected, magnitude = reference(data, "sum", half)
    bound = tolerance(data, expected, "sum", magnitude, half)
    ringdp.allreduce(data, comm=half)
    ok = np.all(np.abs(data - expected) <= bound)
    half.Free()
    assert all_ranks(ok)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_broadcast(rng, dtype):
    n = WORLD.Get_size()
    for root in sorted({0, n - 1}):
        for count in (0, 1, 1001):
            data = random_data(rng, dtype, "sum", count)
            expected = data.copy()
            WORLD.Bcast(expected, root=root)
            returned = ringdp.broadcast(data, root=root)
            assert all_ranks(returned is data and np.array_equal(data, expected))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_allgather(rng, dtype):
    n = WORLD.Get_size()
    for shape in ((0,), (1,), (3, 4)):
        mine = random_data(rng, dtype, "sum", int(np.prod(shape))).reshape(shape)
        expected = np.empty((n,) + shape, dtype)
        WORLD.Allgather(mine, expected)
        gathered = ringdp.allgather(mine)
        # In place: this rank's block of `out` as the input.
        out = np.zeros((n,) + shape, dtype)
        out[WORLD.Get_rank()] = mine
        returned = ringdp.allgather(out[WORLD.Get_rank()], out=out)
        ok = (gathered.shape == expected.shape and np.array_equal(gathered, expected)
              and returned is out and np.array_equal(out, expected))
        assert all_ranks(ok)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_reduce_scatter(rng, dtype):
    n = WORLD.Get_size()
    for op in ops_of(dtype):
        for block in (0, 1, 257):
            data = random_data(rng, dtype, op, n * block)
            expected = np.empty(block, dtype)
            WORLD.Reduce_scatter_block(data, expected, op=MPI_OPS[op])
            if op == "avg":
                expected /= dtype(n)
            out = ringdp.reduce_scatter(data, op=op)
            magnitude = np.empty(block, dtype)
            WORLD.Reduce_scatter_block(np.abs(data), magnitude, op=MPI.SUM)
            bound = tolerance(data, expected, op, magnitude)
            ok = out.shape == (block,) and np.all(np.abs(out - expected) <= bound)
            assert all_ranks(ok), f"{op}, block {block}"
