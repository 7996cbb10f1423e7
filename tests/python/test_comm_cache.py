"""ringdp's duplicate of a communicator: made at its first use, reused, freed with it."""

import numpy as np

import ringdp
from conftest import WORLD, all_ranks

count = ringdp._ringdp._cached_communicator_count


def test_duplicate_is_cached_and_freed_with_the_communicator():
    before = count()
    comm = WORLD.Dup()
    data = np.ones(3)
    ringdp.allreduce(data, comm=comm)
    ringdp.allreduce(data, comm=comm)  # the same duplicate again
    used = count()
    twin = comm.Dup()  # a duplicate of it gets its own (messages must not interleave)
    ringdp.allreduce(data, comm=twin)
    both = count()
    twin.Free()
    comm.Free()
    n = WORLD.Get_size()
    assert all_ranks(used == before + 1 and both == before + 2 and count() == before
                     and np.all(data == n ** 3))


def test_world_is_cached_once():
    ringdp.allreduce(np.ones(1))
    before = count()
    ringdp.broadcast(np.ones(1))
    ringdp.allgather(np.ones(1))
    assert all_ranks(count() == before)
