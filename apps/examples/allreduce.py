#!/usr/bin/env python3
"""Averaging numpy arrays across ranks with ringdp from an mpi4py program.

    mpirun -np 2 python3 apps/examples/allreduce.py

Every rank fills a field with values that depend on its rank, averages it in place with
ringdp, and checks the result against mpi4py's own Allreduce; then it shows what an error
looks like: one rank passes a read-only array, and every rank raises the same ValueError
(naming that rank) instead of the others waiting for it. Exits non-zero on any rank if a
check fails.
"""

import sys

import numpy as np
from mpi4py import MPI

import ringdp

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

# Element i on rank r is i + r: the average over ranks is i + (size - 1) / 2, exact in
# float64 whatever order the sum takes. 100003 elements: a prime, so that the ring's
# chunks do not divide it evenly.
field = np.arange(100003, dtype=np.float64) + rank
ringdp.allreduce(field, op="avg")  # in place, over MPI.COMM_WORLD
ok = np.array_equal(field, np.arange(100003) + (size - 1) / 2)

# The same numbers as mpi4py's Allreduce, for every algorithm.
counts = np.random.default_rng(rank).integers(0, 1000, 4099).astype(np.int64)
expected = np.empty_like(counts)
comm.Allreduce(counts, expected, op=MPI.SUM)
for algorithm in ("auto", "ring", "rd", "mpi", "ps"):
    result = ringdp.allreduce(counts.copy(), op="sum", algorithm=algorithm, comm=comm)
    ok = ok and np.array_equal(result, expected)

# An argument only one rank gets wrong raises on every rank.
data = np.ones(10)
if rank == size - 1:
    data.flags.writeable = False
try:
    ringdp.allreduce(data)
    ok = False
except ValueError as error:
    if rank == 0:
        print(f"every rank raised: {error}")

ok = comm.allreduce(ok, op=MPI.LAND)
if rank == 0:
    print(f"ringdp {ringdp.__version__}: averaged {field.size} doubles over {size} ranks: "
          + ("correct" if ok else "WRONG"))
sys.exit(0 if ok else 1)
