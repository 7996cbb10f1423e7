"""ringdp.GradientReducer from Python: averages equal mpi4py's, bit-identical on every rank,
over several steps, with arrays in one arena (reduced in place) and apart (fused through a
buffer), submitted in any order; misuse raises on every rank and leaves no rank waiting."""

import numpy as np
import pytest
from mpi4py import MPI

import ringdp
from conftest import WORLD, IS_LAST_RANK, all_ranks, raises_everywhere, same_on_all_ranks

# Awkward sizes: empty, one element, a prime, one larger than the default fusion limit.
SIZES = [0, 1, 7, 5003, 40000]


def expected_average(arrays):
    out = []
    for a in arrays:
        total = np.empty_like(a)
        WORLD.Allreduce(a, total, op=MPI.SUM)
        out.append(total / np.float32(WORLD.Get_size()))
    return out


def close(got, want):
    # Sums of n float32 terms in another order: within (n-1)*eps*sum|x| (see
    # test_collectives.tolerance); the values here are in [-1, 1).
    bound = 2 * WORLD.Get_size() * np.finfo(np.float32).eps
    return all(np.allclose(g, w, rtol=0, atol=bound) for g, w in zip(got, want))


@pytest.mark.parametrize("layout", ["arena", "separate"])
def test_reducer_averages(rng, layout):
    if layout == "arena":
        arena = np.zeros(sum(SIZES), np.float32)
        bounds = np.cumsum([0] + SIZES)
        arrays = [arena[b:e] for b, e in zip(bounds[:-1], bounds[1:])]
    else:
        arrays = [np.zeros(n, np.float32) for n in SIZES]
    reducer = ringdp.GradientReducer(arrays)
    assert all_ranks(len(reducer) == len(SIZES) and reducer.arrays[2] is arrays[2])
    for step in range(3):
        for a in arrays:
            a[...] = rng.uniform(-1, 1, a.size)
        want = expected_average(arrays)
        # Last first, as a backward pass would; on odd steps one is left to wait_all().
        for i in reversed(range(len(arrays))):
            if not (step % 2 == 1 and i == 0):
                reducer.submit(i)
        reducer.wait_all()
        assert all_ranks(close(arrays, want)), f"step {step}"
        assert same_on_all_ranks(b"".join(a.tobytes() for a in arrays))


def test_reducer_sum_and_algorithm(rng):
    arrays = [rng.integers(-5, 6, 100).astype(np.float32) for _ in range(3)]
    want = []
    for a in arrays:
        total = np.empty_like(a)
        WORLD.Allreduce(a, total, op=MPI.SUM)
        want.append(total)
    reducer = ringdp.GradientReducer(arrays, op="sum", algorithm="ring", fusion_bytes=0)
    for i in range(3):
        reducer.submit(i)
    reducer.wait_all()
    assert all_ranks(all(np.array_equal(a, w) for a, w in zip(arrays, want)))


def test_reducer_construction_errors():
    n_last = 11 if IS_LAST_RANK and WORLD.Get_size() > 1 else 10
    raises_everywhere(TypeError,
                      lambda: ringdp.GradientReducer([np.zeros(10, np.float64)]),
                      mentions="the reducer takes float32 arrays")
    bad = [np.zeros(10, np.float32)[::2]] if IS_LAST_RANK else [np.zeros(5, np.float32)]
    raises_everywhere(ValueError, lambda: ringdp.GradientReducer(bad),
                      mentions="not C-contiguous")
    if WORLD.Get_size() > 1:
        raises_everywhere(ringdp.InvalidArgument,
                          lambda: ringdp.GradientReducer([np.zeros(n_last, np.float32)]),
                          mentions="every rank must register the same bucket sizes")
    arena = np.zeros(10, np.float32)
    raises_everywhere(ringdp.InvalidArgument,
                      lambda: ringdp.GradientReducer([arena[:6], arena[4:]]),
                      mentions="buckets overlap")


def test_reducer_submit_errors_raise_on_every_rank(rng):
    arrays = [np.ones(10, np.float32), np.ones(20, np.float32)]
    reducer = ringdp.GradientReducer(arrays)
    # The last rank submits an unknown index; every rank learns of it at wait_all(), and
    # every array was reduced all the same (no rank waited for another).
    reducer.submit(0)
    if IS_LAST_RANK:
        reducer.submit(5)
    raises_everywhere(ringdp.InvalidArgument, reducer.wait_all, mentions="bucket 5 of 2")
    reducer.submit(1)
    if IS_LAST_RANK:
        reducer.submit(1)
    raises_everywhere(ringdp.InvalidArgument, reducer.wait_all, mentions="already submitted")
    # Nothing submitted on the last rank, everything on the others: still one full step.
    for a in arrays:
        a[...] = WORLD.Get_rank()
    if not IS_LAST_RANK:
        reducer.submit(1)
        reducer.submit(0)
    reducer.wait_all()
    mean = (WORLD.Get_size() - 1) / 2
    assert all_ranks(all(np.allclose(a, mean) for a in arrays))


def test_reducer_dropped_mid_step_finishes_the_step():
    # As when an exception unwinds between submit() and wait_all(): the step is finished
    # (every array reduced), so no rank waits for this one's part of it.
    arrays = [np.full(10, WORLD.Get_rank(), np.float32), np.zeros(5, np.float32)]
    reducer = ringdp.GradientReducer(arrays)
    reducer.submit(1)
    del reducer
    assert all_ranks(np.allclose(arrays[0], (WORLD.Get_size() - 1) / 2))
