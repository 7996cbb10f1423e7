#!/usr/bin/python3
"""PyTorch data-parallel training: ringdp.torch against DistributedDataParallel (gloo).

    mpirun -np 2 /usr/bin/python3 bench/compare/torch_ddp_vs_ringdp.py [--csv out.csv]

The same PyTorch MLP (784-512-256-10, float32, batch 32 per rank, SGD with momentum) trains
in one interleaved session in three ways, each its own copy of the same initial model on
the same batches:

  local   PyTorch alone on each rank, no communication: the compute of a step
  ringdp  ringdp.torch.DistributedOptimizer (gradients averaged by ringdp over MPI, buckets
          reduced on ringdp's progress thread while backward runs)
  ddp     torch.nn.parallel.DistributedDataParallel, gloo backend, default buckets

Each round runs every variant for --steps timed steps (the order rotates from round to
round, and one untimed warm-up round comes first), so that a noisy machine weighs on all
of them alike. A step's time is the slowest rank's. Printed per variant: samples/s
(median over rounds, with min and max), ms per step, and the exposed communication per
step: its step time minus the local step time of the same round (what averaging the
gradients added to a step; for ringdp also the time step() waited, measured inside). That
difference means something only when each rank has a core to itself: on a machine busy
with other work, ranks that never block (local) get less of the CPU than ranks that block
and wake (the scheduler favours the latter), and it can come out negative.
ringdp's target: at least 1.5x DDP's samples/s. At the end the two trained models are
compared (they saw the same batches, so they differ by rounding only).

Needs PyTorch with gloo (Debian: python3-torch) and the ringdp package on PYTHONPATH
(<build>/python). Both backends run on one host here: ringdp over Open MPI's shared memory,
gloo over TCP on the loopback, which is what each gives on one machine.
"""

import argparse
import copy
import csv
import os
import socket
import statistics
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import mpi4py

# MPI_THREAD_SERIALIZED is what ringdp needs (its progress thread calls MPI only while the
# main thread does not); mpi4py asks for MULTIPLE by default, which costs every MPI call a
# lock in Open MPI.
mpi4py.rc.thread_level = "serialized"
from mpi4py import MPI  # noqa: E402

import ringdp  # noqa: E402
import ringdp.torch  # noqa: E402

# The model of apps/examples/train_torch.py (784-512-256-10 by default, seed 1).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "apps", "examples"))
from train_torch import make_model  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="784-512-256-10")
    p.add_argument("--batch", type=int, default=32, help="samples per rank and step")
    p.add_argument("--steps", type=int, default=100, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--variants", default="local,ringdp,ddp")
    p.add_argument("--csv", help="write one row per round and variant")
    return p.parse_args()


def init_gloo(comm):
    """torch.distributed over gloo, its rendezvous at rank 0 (address sent over MPI)."""
    if comm.Get_rank() == 0:
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        address = (socket.gethostname() if comm.Get_size() > 1 else "127.0.0.1", port)
    else:
        address = None
    host, port = comm.bcast(address, root=0)
    dist.init_process_group("gloo", init_method=f"tcp://{host}:{port}",
                            rank=comm.Get_rank(), world_size=comm.Get_size())


class Variant:
    def __init__(self, name, base, lr, comm):
        self.name = name
        self.model = copy.deepcopy(base)
        sgd = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        if name == "ringdp":
            self.optimizer = ringdp.torch.DistributedOptimizer(sgd, self.model, comm=comm)
            self.forward = self.model
        elif name == "ddp":
            self.optimizer = sgd
            self.forward = torch.nn.parallel.DistributedDataParallel(self.model)
        else:
            self.optimizer = sgd
            self.forward = self.model
        self.next = 0  # index of the next batch

    def run(self, batches, steps):
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(steps):
            x, y = batches[self.next % len(batches)]
            self.next += 1
            self.optimizer.zero_grad()
            loss_fn(self.forward(x), y).backward()
            self.optimizer.step()


def main():
    args = parse_args()
    comm = MPI.COMM_WORLD
    rank, ranks = comm.Get_rank(), comm.Get_size()
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    if "ddp" in names:
        init_gloo(comm)

    rng = np.random.default_rng([rank, 7])
    width = int(args.model.split("-")[0])
    classes = int(args.model.split("-")[-1])
    batches = [(torch.from_numpy(rng.random((args.batch, width), dtype=np.float32)),
                torch.from_numpy(rng.integers(0, classes, args.batch)))
               for _ in range(16)]
    base = make_model(args.model, seed=1)
    variants = {name: Variant(name, base, 0.01, comm) for name in names}
    params = sum(p.numel() for p in base.parameters())
    if rank == 0:
        print(f"torch {torch.__version__}, ringdp {ringdp.__version__}, {ranks} ranks x "
              f"{args.threads} thread(s), MLP {args.model} ({params} parameters, "
              f"{4 * params / 1e6:.2f} MB of float32 gradient), batch {args.batch} per rank")
        print(f"{args.rounds} rounds x {args.steps} steps per variant, order rotating; "
              "times are the slowest rank's")

    rows = []
    for round_ in range(-1, args.rounds):  # round -1: warm-up, not recorded
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            v = variants[name]
            steps = max(5, args.steps // 5) if round_ < 0 else args.steps
            waited = getattr(v.optimizer, "wait_seconds", 0.0)
            comm.Barrier()
            start = time.perf_counter()
            v.run(batches, steps)
            seconds = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
            waited = comm.allreduce(getattr(v.optimizer, "wait_seconds", 0.0) - waited,
                                    op=MPI.MAX)
            if round_ >= 0:
                rows.append({"round": round_, "variant": name, "steps": steps,
                             "seconds": seconds, "ms_per_step": 1000 * seconds / steps,
                             "samples_per_s": steps * args.batch * ranks / seconds,
                             "wait_ms_per_step": 1000 * waited / steps})
    for row in rows:
        local = [r for r in rows if r["round"] == row["round"] and r["variant"] == "local"]
        row["exposed_ms_per_step"] = (row["ms_per_step"] - local[0]["ms_per_step"]
                                      if local else float("nan"))

    if rank == 0:
        report(rows, names)
        if args.csv:
            with open(args.csv, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    if "ringdp" in variants and "ddp" in variants:
        compare_models(variants["ringdp"].model, variants["ddp"].model, rank)
    if "ddp" in names:
        dist.destroy_process_group()


def report(rows, names):
    def med(name, key):
        return statistics.median(r[key] for r in rows if r["variant"] == name)

    print(f"{'variant':8} {'samples/s':>10} {'(min':>8} {'max)':>8} {'ms/step':>8} "
          f"{'exposed comm ms/step':>21} {'step() waited ms':>17}")
    for name in names:
        sps = [r["samples_per_s"] for r in rows if r["variant"] == name]
        waited = f"{med(name, 'wait_ms_per_step'):17.2f}" if name == "ringdp" else f"{'':17}"
        print(f"{name:8} {statistics.median(sps):10.0f} {min(sps):8.0f} {max(sps):8.0f} "
              f"{med(name, 'ms_per_step'):8.2f} {med(name, 'exposed_ms_per_step'):21.2f}"
              f"{waited}")
    if "ringdp" in names and "ddp" in names:
        ratios = []
        for round_ in sorted({r["round"] for r in rows}):
            by = {r["variant"]: r for r in rows if r["round"] == round_}
            ratios.append(by["ringdp"]["samples_per_s"] / by["ddp"]["samples_per_s"])
        print(f"ringdp / ddp samples/s: {statistics.median(ratios):.2f}x (median of the "
              f"rounds' ratios; min {min(ratios):.2f}x, max {max(ratios):.2f}x; target >= 1.5x)")


def compare_models(a, b, rank):
    worst = max(float((pa - pb).abs().max() / pb.abs().max().clamp(min=1e-30))
                for pa, pb in zip(a.parameters(), b.parameters()))
    worst = MPI.COMM_WORLD.allreduce(worst, op=MPI.MAX)
    if rank == 0:
        print(f"ringdp and ddp models after the same steps: largest difference "
              f"{worst:.2e} of a tensor's largest value (rounding only)")


if __name__ == "__main__":
    sys.exit(main())
