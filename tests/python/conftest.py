"""pytest under mpirun: every rank runs every test, in the same order.

A test must never assert a condition of its own rank alone (the ranks would part ways and
the next collective would hang): it reduces its checks over the ranks with all_ranks() and
asserts that, so that every rank fails the same test. Ranks other than 0 print their
report only when some test failed on them.
"""

import hashlib
import io
import zlib
import sys

import numpy as np
import pytest
from mpi4py import MPI

import ringdp  # noqa: F401  (imports the package under test once, before any test)

WORLD = MPI.COMM_WORLD
LAST_RANK = WORLD.Get_size() - 1
IS_LAST_RANK = WORLD.Get_rank() == LAST_RANK


def all_ranks(ok, comm=WORLD):
    """True on every rank when `ok` is true on every rank (collective)."""
    return comm.allreduce(bool(ok), op=MPI.LAND)


def same_on_all_ranks(value, comm=WORLD):
    """True on every rank when every rank holds an equal `value` (bytes, str, tuple...);
    bytes are compared by their SHA-256."""
    if isinstance(value, bytes):
        value = hashlib.sha256(value).hexdigest()
    values = comm.allgather(value)
    return all(v == values[0] for v in values)


def raised(fn):
    """Runs fn(); returns the exception it raised (or None)."""
    try:
        fn()
    except Exception as error:  # noqa: BLE001
        return error
    return None


def raises_everywhere(cls, fn, comm=WORLD, mentions=None):
    """fn() raises `cls` on every rank, with the same message on every rank (mentioning
    `mentions` when given). Returns the local exception."""
    error = raised(fn)
    ok = isinstance(error, cls) and (mentions is None or mentions in str(error))
    desc = (type(error).__name__, str(error))
    assert all_ranks(ok, comm), f"rank {comm.Get_rank()} got {desc!r}, expected {cls.__name__}"
    assert same_on_all_ranks(desc, comm), f"ranks differ: {comm.allgather(desc)!r}"
    return error


@pytest.fixture
def rng(request):
    """A generator seeded by this rank and the test's name: different data on every rank,
    the same data in every run."""
    seed = zlib.crc32(request.node.name.encode())
    return np.random.default_rng([WORLD.Get_rank(), seed])


_quiet = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Before the terminal reporter is made, so that it writes into the buffer.
    global _quiet
    if WORLD.Get_rank() != 0:
        _quiet = (sys.stdout, io.StringIO())
        sys.stdout = _quiet[1]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _quiet is not None:
        sys.stdout = _quiet[0]
        failed = config.pluginmanager.get_plugin("terminalreporter").stats.get("failed")
        if failed:
            sys.stdout.write(f"--- rank {WORLD.Get_rank()} ---\n" + _quiet[1].getvalue())
