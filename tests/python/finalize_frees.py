"""MPI_Finalize frees ringdp's cached duplicates (of MPI.COMM_WORLD, of communicators never
freed), before MPI goes. Run under mpirun; exits non-zero on any rank where one is left.

MPI deletes the attributes of MPI_COMM_SELF first in MPI_Finalize, in the reverse order of
their setting: the attribute set here before ringdp's first call is deleted after ringdp's
own (set at that call), and its callback counts what is still cached. MPI.Finalize() is
called explicitly: at exit mpi4py finalises MPI after the interpreter has stopped, when
no Python callback runs any more (ringdp's own hook is C++ and runs either way).
"""

import os

import numpy as np
from mpi4py import MPI

import ringdp

count = ringdp._ringdp._cached_communicator_count
left_at_finalize = []


def at_finalize(comm, keyval, value):
    left_at_finalize.append(count())


keyval = MPI.Comm.Create_keyval(delete_fn=at_finalize)
MPI.COMM_SELF.Set_attr(keyval, "check")

rank = MPI.COMM_WORLD.Get_rank()
half = MPI.COMM_WORLD.Split(rank % 2, 0)  # never freed
for comm in (MPI.COMM_WORLD, half, MPI.COMM_SELF):
    ringdp.allreduce(np.ones(4), comm=comm)
cached = count()
MPI.Finalize()

ok = cached == 3 and left_at_finalize == [0]
print(f"rank {rank}: {cached} cached duplicates before MPI_Finalize, "
      f"{left_at_finalize[0] if left_at_finalize else 'unknown'} left when it ran "
      f"{'(ok)' if ok else '(WRONG: expected 3, then 0)'}", flush=True)
os._exit(0 if ok else 1)
