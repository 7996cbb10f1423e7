"""ringdp.SharedBuffer: node-shared numpy arrays, reduced by shm, hier and auto against
mpi4py's Allreduce of the same data, bit-identical on every rank; the views' lifetime; the
errors, on every rank. Also run as several "nodes" of one machine (RINGDP_NODE_SIZE=2),
where shm is refused on every rank and hier reduces across the nodes."""

import gc
import os

import numpy as np
import pytest
from mpi4py import MPI

import ringdp
from conftest import (IS_LAST_RANK, WORLD, all_ranks, raised, raises_everywhere,
                      same_on_all_ranks)
from test_collectives import DTYPES, ops_of, random_data, reference, tolerance

NODE_SIZE = int(os.environ.get("RINGDP_NODE_SIZE", "0"))
SEVERAL_NODES = 0 < NODE_SIZE < WORLD.Get_size()
# 1: a single element; 1000; 5003: a prime over several 4 KiB segments.
SIZES = [1, 1000, 5003]


def check_reduced(result, data, op):
    expected, magnitude = reference(data, op)
    close = np.all(np.abs(result - expected) <= tolerance(data, expected, op, magnitude))
    assert all_ranks(close), f"differs from MPI_Allreduce on rank {WORLD.Get_rank()}"
    assert same_on_all_ranks(result.tobytes()), "ranks differ"


def reduce(array, op, algorithm):
    if algorithm == "shm" and SEVERAL_NODES:
        # Refused by every rank alike without communication: the message names the rank
        # raising it, the cause is the same everywhere.
        error = raised(lambda: ringdp.allreduce(array, op=op, algorithm="shm"))
        ok = isinstance(error, ringdp.InvalidArgument) and "one node" in str(error)
        assert all_ranks(ok), f"rank {WORLD.Get_rank()} got {error!r}"
        assert same_on_all_ranks(error.cause), "causes differ"
        return False
    assert ringdp.allreduce(array, op=op, algorithm=algorithm) is array
    return True


@pytest.mark.parametrize("algorithm", ["shm", "hier", "auto"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_matches_mpi(rng, dtype, algorithm):
    for op in ops_of(dtype):
        for n in SIZES:
            data = random_data(rng, dtype, op, n)
            with ringdp.SharedBuffer(n, dtype) as buf:
                buf.array[:] = data
                result = buf.array
                if reduce(result, op, algorithm):
                    check_reduced(result, data, op)


def test_shared_and_ordinary_memory_mixed(rng):
    # Even ranks reduce a SharedBuffer, odd ranks an ordinary array: both are accepted.
    data = random_data(rng, np.float64, "sum", 777)
    buf = ringdp.SharedBuffer(777, np.float64)
    target = buf.array if WORLD.Get_rank() % 2 == 0 else np.empty(777)
    target[:] = data
    if reduce(target, "sum", "auto"):
        check_reduced(target, data, "sum")
    buf.free()


def test_views_keep_the_memory_alive(rng):
    buf = ringdp.SharedBuffer(100, np.int64, comm=MPI.COMM_WORLD)
    view = np.asarray(buf)
    ok = (len(buf) == buf.size == 100 and buf.dtype == np.int64 and view.flags.writeable
          and np.shares_memory(view, buf.array))
    tail = view[10:]  # a view of the view holds the memory too
    del buf, view
    gc.collect()
    data = random_data(rng, np.int64, "sum", 90)
    tail[:] = data
    ringdp.allreduce(tail, algorithm="auto")
    assert all_ranks(ok)
    check_reduced(tail, data, "sum")


def test_free_and_with_block(rng):
    with ringdp.SharedBuffer(50, "float32") as buf:
        kept = buf.array
        kept[:] = random_data(rng, np.float32, "max", 50)
    freed_ok = buf.freed and "freed" in repr(buf)
    raises_everywhere(ValueError, lambda: buf.array, mentions="freed")
    buf.free()  # again: nothing
    data = kept.copy()
    ringdp.allreduce(kept, op="max", algorithm="hier")  # the view stays valid
    assert all_ranks(freed_ok)
    check_reduced(kept, data, "max")


def test_contents_survive_the_window_growing(rng):
    first = ringdp.SharedBuffer(1000, np.float64)
    first.array[:] = random_data(rng, np.float64, "sum", 1000)
    before = first.array.copy()
    bigger = [ringdp.SharedBuffer(n, np.float32) for n in (300_001, 5, 700_000)]
    for b in bigger:
        b.array[:] = 1
    del bigger
    again = ringdp.SharedBuffer(1 << 20, np.float32)  # frees the unused generations
    again.array[:] = 2
    assert all_ranks(np.array_equal(first.array, before))
    data = first.array.copy()
    if reduce(first.array, "sum", "auto"):
        check_reduced(first.array, data, "sum")


def test_a_count_that_differs_is_a_mismatch_everywhere():
    if WORLD.Get_size() == 1:
        pytest.skip("needs two ranks")
    raises_everywhere(ringdp.MismatchError,
                      lambda: ringdp.SharedBuffer(10 + IS_LAST_RANK, np.float32),
                      mentions="SharedBuffer")


def test_bad_arguments_raise_everywhere():
    raises_everywhere(TypeError, lambda: ringdp.SharedBuffer(8, np.float16), mentions="float16")
    raises_everywhere(TypeError, lambda: ringdp.SharedBuffer(8, "no such dtype"))
    raises_everywhere(TypeError,
                      lambda: ringdp.SharedBuffer(8, np.uint16 if IS_LAST_RANK else np.int64))
    raises_everywhere(TypeError, lambda: ringdp.SharedBuffer(8, ">f4" if IS_LAST_RANK else "<f4"))
    raises_everywhere(ValueError, lambda: ringdp.SharedBuffer(-1 if IS_LAST_RANK else 4))
    raises_everywhere(ValueError, lambda: ringdp.SharedBuffer(4, comm=MPI.COMM_NULL))


def test_a_buffer_outliving_its_communicator_never_waits():
    # The last rank lets go of its buffer and view after comm.Free(), before the others do:
    # the memory is left mapped instead of a collective MPI_Win_free on that rank alone,
    # so the barrier below is reached on every rank.
    sub = WORLD.Split(0, WORLD.Get_rank())
    buf = ringdp.SharedBuffer(100, np.float32, comm=sub)
    view = buf.array
    view[:] = 1
    ringdp.allreduce(view, comm=sub)
    ok = np.all(view == sub.Get_size())
    sub.Free()
    if IS_LAST_RANK:
        del buf, view
        gc.collect()
    WORLD.Barrier()
    assert all_ranks(ok)
