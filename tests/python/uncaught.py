"""A job where ranks raise exceptions nobody catches (run by uncaught_check.py).

    uncaught.py one   the last rank raises on its own while the others wait in allreduce:
                      ringdp's excepthook must end the job (MPI_Abort) instead of a hang
    uncaught.py all   an argument error agreed across ranks: every rank raises it, and the
                      ranks exit together without an abort
"""

import sys

import numpy as np
from mpi4py import MPI

import ringdp

rank, last = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size() - 1
data = np.ones(8)
if sys.argv[1] == "one":
    if rank == last:
        raise RuntimeError("this rank stops on its own")
    ringdp.allreduce(data)  # waits for the last rank, which never comes
else:
    if rank == last:
        data.flags.writeable = False
    ringdp.allreduce(data)  # a ValueError on every rank
