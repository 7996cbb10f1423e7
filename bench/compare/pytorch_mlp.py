#!/usr/bin/python3
"""PyTorch's side of bench/compare: the MLP training loop that bench-train-throughput times in
ringdp, on one process or on several under DistributedDataParallel (gloo).

Run by ringdp_vs_pytorch.py, fresh processes for every measurement: one, or one per rank
(--rank r of --ranks N, meeting at 127.0.0.1:--port, as torchrun would start them). Rank 0
prints one JSON line on stdout: samples_per_s (global samples / the slowest rank's wall time
over the timed steps, as bench-train-throughput counts them), the step time, and PyTorch's
version and BLAS library.

usage: pytorch_mlp.py --model 784-512-256-10 --batch 64 --steps 300 --warmup 20
                      [--rank R --ranks N --port P] [--cpu C]
"""
import argparse
import json
import os
import sys
import time


def blas_library():
    """The BLAS shared library mapped into this process (after a product ran)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if "blas" in os.path.basename(path):
                    return path
    except OSError:
        pass
    return "unknown"


def make_model(torch, widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def train(args):
    # One compute thread, like one ringdp rank with --threads 1: ATen and the BLAS both
    # (torch.set_num_threads does not reach Debian's OpenBLAS, which would start its own).
    import torch
    torch.set_num_threads(1)
    rank = args.rank
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    widths = [int(w) for w in args.model.split("-")]
    torch.manual_seed(1)
    model = make_model(torch, widths)
    if args.ranks > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank,
                                world_size=args.ranks)
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    # In-memory synthetic data, each step gathering its batch from a shuffled order (as
    # ringdp's InMemorySource does): uniform features, labels from a linear teacher.
    steps = args.steps + args.warmup
    samples = args.batch * steps
    generator = torch.Generator().manual_seed(1 + rank)
    x = torch.rand(samples, widths[0], generator=generator)
    teacher = torch.rand(widths[-1], widths[0], generator=generator) * 2 - 1
    y = (x @ teacher.t()).argmax(dim=1)
    order = torch.randperm(samples, generator=generator)

    def step(s):
        idx = order[s * args.batch:(s + 1) * args.batch]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        return loss

    for s in range(args.warmup):
        step(s)
    if args.ranks > 1:
        torch.distributed.barrier()
    start = time.perf_counter()
    for s in range(args.warmup, steps):
        step(s)
    seconds = time.perf_counter() - start
    if args.ranks > 1:
        t = torch.tensor([seconds], dtype=torch.float64)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        seconds = t.item()
        # No destroy_process_group(): with gloo in PyTorch 1.13 it waited forever in one of
        # the ranks once the other had left (seen at batch 256). After the all-reduce no
        # rank needs another; each leaves with os._exit below.
    if rank == 0:
        print(json.dumps({
            "samples_per_s": args.batch * args.ranks * args.steps / seconds,
            "step_ms": 1e3 * seconds / args.steps,
            "torch": torch.__version__,
            "blas": blas_library(),
        }), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="784-512-256-10")
    parser.add_argument("--batch", type=int, default=64, help="samples per rank per step")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--port", type=int, default=29531)
    parser.add_argument("--cpu", type=int, default=-1, help="pin this process to this CPU")
    args = parser.parse_args()
    # Before torch is imported: the BLAS and OpenMP read these when they load.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    train(args)
    # With a gloo process group, PyTorch 1.13 sometimes never finishes exiting (its main
    # thread waits at interpreter shutdown for a thread of its own: 2 of 6 DDP runs on the
    # development machine hung there after printing their result). Everything is printed
    # and flushed by now, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
