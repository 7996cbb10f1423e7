"""ringdp for Python: ringdp's collectives on numpy arrays over mpi4py communicators.

    from mpi4py import MPI
    import numpy as np
    import ringdp

    x = np.ones(1000, dtype=np.float32)
    ringdp.allreduce(x, op="avg")                 # in place, over MPI.COMM_WORLD
    ringdp.allreduce(x, op="sum", algorithm="ring", comm=MPI.COMM_WORLD.Split(0, 0))

The same C++ collectives as ringdp's C++ and C APIs, on ringdp's own duplicate of each
communicator (created at its first use, collectively, and freed with it). Arrays are
reduced in place and never copied; the GIL is released while MPI runs.

Errors raise on every rank alike: an argument one rank rejects (a read-only or
non-contiguous array: ValueError; another dtype: TypeError; an unknown op: InvalidArgument)
raises the same exception, with the same message naming that rank, on every rank of the
communicator, instead of leaving the others waiting in the collective. ringdp's own errors
are ringdp.Error (a RuntimeError) and its subclasses MpiError, IoError, InvalidArgument
(also a ValueError) and MismatchError (check mode). An uncaught exception that only some
ranks raise ends the whole job (MPI_Abort, after the traceback), so that the other ranks do
not wait for a rank that has stopped; see _abort_on_uncaught_exception.

ringdp.SharedBuffer(n, numpy.float32) is node-shared memory: its .array, reduced with the
"shm" or "hier" algorithm (or "auto"), is read and written in place, with no copy-in.

ringdp.torch (imported on its own; needs PyTorch) averages gradients during backward.
"""

import contextlib
import sys

from mpi4py import MPI  # initialises MPI (thread level: mpi4py.rc.thread_level) if not yet

from ._ringdp import (  # noqa: F401  (re-exported)
    Error,
    GradientReducer,
    InvalidArgument,
    IoError,
    MismatchError,
    MpiError,
    SharedBuffer,
    __version__,
    agree,
    allgather,
    allreduce,
    broadcast,
    check_mode,
    default_bucket_bytes,
    default_fusion_bytes,
    git_hash,
    reduce_scatter,
    set_check_mode,
)

__all__ = [
    "Error", "MpiError", "IoError", "InvalidArgument", "MismatchError",
    "allreduce", "broadcast", "allgather", "reduce_scatter", "GradientReducer",
    "SharedBuffer",
    "agree", "agreed", "set_check_mode", "check_mode",
    "default_bucket_bytes", "default_fusion_bytes", "__version__", "git_hash",
]


@contextlib.contextmanager
def agreed(comm=None):
    """Runs the block on every rank, then agrees: if it raised on any rank, every rank
    raises the error of the lowest failing rank (see agree()); otherwise all go on.

        with ringdp.agreed():
            shard = load_shard(path_of(rank))   # may fail on one rank only
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001  (any exception is agreed)
        agree(error, comm)
        raise  # not reached: agree() raised the agreed error
    agree(None, comm)


def _abort_on_uncaught_exception(previous_hook):
    """sys.excepthook for jobs of several ranks: after the traceback, MPI_Abort ends the
    job, unless every rank raised the exception together (an agreed error, `collective`).
    A rank that stops on its own error would otherwise leave the others waiting in their
    next collective for ever, and MPI_Finalize at exit could wait too (the rule of
    Boost.MPI's environment and `python -m mpi4py`). Restore the previous hook with
    sys.excepthook = sys.__excepthook__ to opt out."""

    def hook(kind, value, traceback):
        previous_hook(kind, value, traceback)
        if getattr(value, "collective", False):
            return
        if not MPI.Is_initialized() or MPI.Is_finalized() or MPI.COMM_WORLD.Get_size() == 1:
            return
        sys.stderr.write(
            f"ringdp: rank {MPI.COMM_WORLD.Get_rank()}: uncaught {kind.__name__}: ending the "
            "job (MPI_Abort) so that no other rank waits for this one\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)

    hook.ringdp = True
    return hook


if not getattr(sys.excepthook, "ringdp", False):
    sys.excepthook = _abort_on_uncaught_exception(sys.excepthook)
