"""A job where ranks raise exceptions nobody catches (run by uncaught_check.py).

    uncaught.py one DIR   the last rank raises on its own while the others wait in
                          allreduce: ringdp's excepthook must end the job (MPI_Abort)
                          instead of a hang
    uncaught.py all DIR   an argument error agreed across ranks: every rank raises it, and
                          the ranks exit together without an abort

Each rank writes its standard error to DIR/<case>.<rank>.txt: the ranks' tracebacks, written
piecewise to one stream by mpiexec, would interleave mid-line.
"""

import os
import sys

import numpy as np
from mpi4py import MPI

import ringdp

rank, last = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size() - 1
with open(os.path.join(sys.argv[2], f"{sys.argv[1]}.{rank}.txt"), "wb") as log:
    os.dup2(log.fileno(), sys.stderr.fileno())
data = np.ones(8)
if sys.argv[1] == "one":
    if rank == last:
        raise RuntimeError("this rank stops on its own")
    ringdp.allreduce(data)  # waits for the last rank, which never comes
else:
    if rank == last:
        data.flags.writeable = False
    ringdp.allreduce(data)  # a ValueError on every rank
