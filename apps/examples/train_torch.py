#!/usr/bin/env python3
"""Data-parallel PyTorch training with ringdp averaging the gradients.

    mpirun -np 2 python3 apps/examples/train_torch.py

The same job as `mpirun -np 2 ringdp-train`: the 784-512-256-10 MLP on the bundled MNIST
subset (data/mnist10k.h5, read with h5py), batch 32 per rank, SGD with momentum 0.9 and a
cosine learning rate from 0.1, here in PyTorch with ringdp.torch.DistributedOptimizer.

Sampling: each epoch draws one permutation of the training set from the seed; step k
trains on the global batch of rows k*B*n .. (k+1)*B*n of it (B per rank, n ranks), and rank
r on its share r*B .. (r+1)*B of that batch. Each rank reads from the file only the rows
it trains on in the epoch. So a run at n ranks with --batch B makes the same steps as one
at 1 rank with --batch n*B: with --plain (PyTorch alone, 1 rank) that is the reference
the tests compare ringdp's result with.
"""

import argparse
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
import mpi4py

# MPI_THREAD_SERIALIZED is what ringdp needs (its progress thread calls MPI only while the
# main thread does not); mpi4py asks for MULTIPLE by default, which costs every MPI call a
# lock in Open MPI.
mpi4py.rc.thread_level = "serialized"
from mpi4py import MPI  # noqa: E402

import ringdp  # noqa: E402
import ringdp.torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "data", "mnist10k.h5")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.normpath(DEFAULT_DATA), help="HDF5 dataset")
    p.add_argument("--model", default="784-512-256-10", help="MLP widths")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: all)")
    p.add_argument("--batch", type=int, default=32, help="samples per rank and step")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--algorithm", default="auto", help="ringdp's allreduce algorithm")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per rank (0: the node's cores / its ranks)")
    p.add_argument("--plain", action="store_true",
                   help="PyTorch alone, no ringdp (1 rank): the reference run")
    p.add_argument("--save", help="write the final parameters to this .npz (rank 0)")
    p.add_argument("--quiet", action="store_true", help="print the summary line only")
    return p.parse_args()


def make_model(spec, seed):
    widths = [int(w) for w in spec.split("-")]
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class Shard:
    """This rank's rows of each global batch of an epoch, read from the file at the start
    of the epoch (only those rows: h5py reads a sorted selection)."""

    def __init__(self, path, split, batch, rank, ranks, seed):
        self.file = h5py.File(path, "r")
        self.images = self.file[f"{split}/images"]
        self.labels = self.file[f"{split}/labels"]
        self.batch, self.rank, self.ranks, self.seed = batch, rank, ranks, seed
        self.steps = len(self.labels) // (batch * ranks)  # whole global batches only

    def epoch(self, epoch):
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))
        g = self.batch * self.ranks
        mine = order[:self.steps * g].reshape(self.steps, self.ranks, self.batch)[:, self.rank]
        rows = np.unique(mine)  # sorted, as h5py's selection needs
        images = torch.from_numpy(self.images[rows].astype(np.float32) / 255.0)
        labels = torch.from_numpy(self.labels[rows].astype(np.int64))
        position = np.searchsorted(rows, mine)  # step, sample -> row of what was read
        for step in range(self.steps):
            yield images[position[step]], labels[position[step]]


def evaluate(model, path, rank, ranks):
    """Accuracy on the test split, each rank taking a contiguous share, summed over ranks."""
    with h5py.File(path, "r") as f:
        n = len(f["test/labels"])
        lo, hi = n * rank // ranks, n * (rank + 1) // ranks
        x = torch.from_numpy(f["test/images"][lo:hi].astype(np.float32) / 255.0)
        y = torch.from_numpy(f["test/labels"][lo:hi].astype(np.int64))
    with torch.no_grad():
        correct = np.array([(model(x).argmax(1) == y).sum().item(), hi - lo], dtype=np.int64)
    if ranks > 1:
        ringdp.allreduce(correct)
    return correct[0] / correct[1]


def main():
    args = parse_args()
    comm = MPI.COMM_WORLD
    rank, ranks = comm.Get_rank(), comm.Get_size()
    if args.plain and ranks != 1:
        sys.exit("train_torch.py: --plain runs PyTorch alone, on 1 rank")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // local))

    model = make_model(args.model, args.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    if not args.plain:
        optimizer = ringdp.torch.DistributedOptimizer(optimizer, model,
                                                      algorithm=args.algorithm)
    train = Shard(args.data, "train", args.batch, rank, ranks, args.seed)
    total = args.epochs * train.steps if args.steps == 0 else min(args.steps,
                                                                   args.epochs * train.steps)
    say = (lambda *a: print(*a, flush=True)) if rank == 0 and not args.quiet else (lambda *a: 0)
    say(f"train_torch: {args.model} MLP, {ranks} rank(s) x batch {args.batch}, "
        f"{train.steps} steps per epoch, {'PyTorch alone' if args.plain else 'ringdp.torch'}, "
        f"{torch.get_num_threads()} thread(s) per rank")

    step = 0
    started = time.perf_counter()
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        epoch_start, losses = time.perf_counter(), []
        for x, y in train.epoch(epoch):
            if step == total:
                break
            for group in optimizer.param_groups:  # cosine decay over the run, per step
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        seconds = time.perf_counter() - epoch_start
        if not args.quiet:
            accuracy = evaluate(model, args.data, rank, ranks)
            say(f"epoch {epoch + 1:2d}/{args.epochs}  train loss {np.mean(losses):.4f}  "
                f"test acc {100 * accuracy:6.2f}%  {seconds:5.2f} s  "
                f"{len(losses) * args.batch * ranks / seconds:8.0f} samples/s")
        if step == total:
            break
    elapsed = time.perf_counter() - started
    waited = 0.0 if args.plain else optimizer.wait_seconds
    if rank == 0:
        print(f"done: {step} steps, {step * args.batch * ranks} samples in {elapsed:.1f} s; "
              f"waited for the gradient averaging {1000 * waited / max(step, 1):.2f} ms/step",
              flush=True)
    if args.save and rank == 0:
        np.savez(args.save, **{k: v.detach().numpy() for k, v in model.state_dict().items()})


if __name__ == "__main__":
    main()
