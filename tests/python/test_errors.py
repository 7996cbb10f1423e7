"""Every error of the Python API raises on every rank, with the same class and message, and
no rank is left waiting: arguments all ranks get wrong, and arguments only the last rank
gets wrong (the others passed good ones and would otherwise wait in the collective)."""

import sys

import numpy as np
import pytest
from mpi4py import MPI

import ringdp
from conftest import LAST_RANK as LAST
from conftest import IS_LAST_RANK as IS_LAST
from conftest import WORLD, all_ranks, raised, raises_everywhere, same_on_all_ranks


def good():
    return np.arange(10, dtype=np.float64)


def read_only():
    a = good()
    a.flags.writeable = False
    return a


# Each case: (name, the bad argument's maker, exception class, words of the message).
ARRAY_CASES = [
    ("read_only", read_only, ValueError, "read-only"),
    ("not_contiguous", lambda: np.arange(20, dtype=np.float64)[::2], ValueError,
     "not C-contiguous"),
    ("fortran_order", lambda: np.zeros((3, 4), order="F"), ValueError, "not C-contiguous"),
    ("float16", lambda: np.zeros(10, np.float16), TypeError, "dtype float16"),
    ("complex", lambda: np.zeros(10, np.complex128), TypeError, "dtype complex128"),
    ("uint32", lambda: np.zeros(10, np.uint32), TypeError, "dtype uint32"),
    ("big_endian", lambda: np.zeros(10, ">f8"), TypeError, "native byte order"),
    ("list", lambda: [1.0, 2.0], TypeError, "must be a numpy.ndarray, got list"),
]


@pytest.mark.parametrize("who", ["all", "last"])
@pytest.mark.parametrize("case", ARRAY_CASES, ids=lambda c: c[0])
def test_allreduce_bad_array(case, who):
    _, make, cls, words = case
    array = make() if who == "all" or IS_LAST else good()
    error = raises_everywhere(cls, lambda: ringdp.allreduce(array), mentions=words)
    # The message names the rank whose argument it was; every rank knows it is collective.
    expected_rank = 0 if who == "all" else LAST
    assert all_ranks(f"rank {expected_rank}:" in str(error) and error.collective
                     and error.rank == expected_rank)


@pytest.mark.parametrize("who", ["all", "last"])
def test_allreduce_bad_names(who):
    bad = who == "all" or IS_LAST
    raises_everywhere(ringdp.InvalidArgument,
                      lambda: ringdp.allreduce(good(), op="summ" if bad else "sum"),
                      mentions="unknown reduction 'summ'")
    raises_everywhere(ringdp.InvalidArgument,
                      lambda: ringdp.allreduce(good(), algorithm="fast" if bad else "auto"),
                      mentions="'fast'")
    # ringdp.InvalidArgument is a ValueError as well as a ringdp.Error.
    ints = np.arange(4, dtype=np.int32)
    error = raises_everywhere(ValueError,
                              lambda: ringdp.allreduce(ints, op="avg" if bad else "sum"),
                              mentions="needs a floating-point type")
    assert all_ranks(isinstance(error, ringdp.Error) and isinstance(error, RuntimeError))


def test_bad_communicator_raises_locally():
    # Not a communicator: there is nothing to agree on, so each rank raises on its own (all
    # pass the same here); the error says it is not collective.
    error = raised(lambda: ringdp.allreduce(good(), comm="world"))
    assert all_ranks(isinstance(error, TypeError) and "mpi4py intracommunicator" in str(error)
                     and not error.collective)
    error = raised(lambda: ringdp.allreduce(good(), comm=MPI.COMM_NULL))
    assert all_ranks(isinstance(error, ValueError) and "COMM_NULL" in str(error))


def test_check_mode_mismatch():
    comm = WORLD.Dup()
    ringdp.set_check_mode(True, comm)
    try:
        assert all_ranks(ringdp.check_mode(comm))
        # A count that differs on the last rank; then a dtype that differs.
        count = 11 if IS_LAST and WORLD.Get_size() > 1 else 10
        data = np.zeros(count)
        if WORLD.Get_size() == 1:
            ringdp.allreduce(data, comm=comm)  # nothing can differ at one rank
            return
        raises_everywhere(ringdp.MismatchError, lambda: ringdp.allreduce(data, comm=comm),
                          comm=comm, mentions=f"rank {LAST} passed count 11")
        other = np.zeros(10, np.float32 if IS_LAST else np.float64)
        raises_everywhere(ringdp.MismatchError, lambda: ringdp.allreduce(other, comm=comm),
                          comm=comm, mentions="check mode: allreduce called with different")
        # The communicator still works after a mismatch.
        ok = np.ones(5)
        ringdp.allreduce(ok, comm=comm)
        assert all_ranks(np.all(ok == WORLD.Get_size()))
    finally:
        ringdp.set_check_mode(False, comm)
        comm.Free()


@pytest.mark.parametrize("who", ["all", "last"])
def test_broadcast_errors(who):
    bad = who == "all" or IS_LAST
    n = WORLD.Get_size()
    raises_everywhere(ringdp.InvalidArgument,
                      lambda: ringdp.broadcast(good(), root=n if bad else 0),
                      mentions=f"root {n} is not a rank")
    raises_everywhere(ValueError, lambda: ringdp.broadcast(read_only() if bad else good()),
                      mentions="read-only")


@pytest.mark.parametrize("who", ["all", "last"])
def test_allgather_errors(who):
    bad = who == "all" or IS_LAST
    n = WORLD.Get_size()
    out = np.zeros(10 * n + (1 if bad else 0))
    raises_everywhere(ValueError, lambda: ringdp.allgather(good(), out=out),
                      mentions=f"out has {10 * n + 1} elements")
    out = np.zeros(10 * n, np.float32 if bad else np.float64)
    raises_everywhere(TypeError, lambda: ringdp.allgather(good(), out=out), mentions="dtype")
    # The input may be read-only (it is only read); the output may not.
    gathered = ringdp.allgather(read_only())
    assert all_ranks(gathered.shape == (n, 10))


@pytest.mark.parametrize("who", ["all", "last"])
def test_reduce_scatter_errors(who):
    bad = who == "all" or IS_LAST
    n = WORLD.Get_size()
    raises_everywhere(ringdp.InvalidArgument,
                      lambda: ringdp.reduce_scatter(np.zeros(2 * n, np.int64),
                                                    op="avg" if bad else "sum"),
                      mentions="needs a floating-point type")
    if n > 1:
        data = np.zeros(2 * n + (1 if bad else 0))
        raises_everywhere(ValueError, lambda: ringdp.reduce_scatter(data),
                          mentions="not a multiple")
    data = np.zeros(2 * n)
    raises_everywhere(ValueError, lambda: ringdp.reduce_scatter(data, out=data[:2]),
                      mentions="out overlaps array")


def test_agree():
    ringdp.agree()  # nobody failed: returns everywhere
    raises_everywhere(ValueError, lambda: ringdp.agree(ValueError("bad shard") if IS_LAST
                                                       else None),
                      mentions=f"rank {LAST}: bad shard")
    raises_everywhere(ringdp.Error, lambda: ringdp.agree(KeyError("x") if IS_LAST else None),
                      mentions="KeyError")
    raises_everywhere(ringdp.Error, lambda: ringdp.agree("no data" if IS_LAST else None),
                      mentions="no data")

    # An error ringdp raised, passed on: its cause, named once with the passing rank.
    first = raised(lambda: ringdp.allreduce(np.zeros(3, np.float16)))
    again = raises_everywhere(TypeError, lambda: ringdp.agree(first if IS_LAST else None),
                              mentions=f"rank {LAST}: allreduce: array has dtype float16")
    assert all_ranks(str(again).count("ringdp: rank") == 1 and again.cause == first.cause)

    def block():
        with ringdp.agreed():
            if IS_LAST:
                raise TypeError("wrong kind of input")
    raises_everywhere(TypeError, block, mentions="wrong kind of input")


def test_error_classes():
    assert issubclass(ringdp.Error, RuntimeError)
    assert issubclass(ringdp.InvalidArgument, ringdp.Error)
    assert issubclass(ringdp.InvalidArgument, ValueError)
    for cls in (ringdp.MpiError, ringdp.IoError, ringdp.MismatchError):
        assert issubclass(cls, ringdp.Error)
    assert same_on_all_ranks(ringdp.__version__)
    assert "torch" not in sys.modules  # importing ringdp never imports PyTorch
