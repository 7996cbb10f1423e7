#!/usr/bin/python3
"""apps/examples/train_torch.py with ringdp at 2 ranks ends with the parameters of PyTorch
alone at 1 rank with twice the batch (the same global batches, see the example's doc),
within 1e-5 relative: per tensor, the largest difference over the tensor's largest value.

usage: train_torch_check.py --mpiexec PATH --python PATH --script PATH --workdir DIR
"""

import argparse
import os
import subprocess
import sys

import numpy as np

STEPS = 40
TOLERANCE = 1e-5


def run(args, ranks, extra, save):
    cmd = [args.mpiexec, "-np", str(ranks), args.python, args.script, "--epochs", "1",
           "--steps", str(STEPS), "--threads", "1", "--quiet", "--save", save] + extra
    print("$ " + " ".join(cmd[3:]), flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        sys.exit(f"hang: no exit within 120 s: {' '.join(cmd)}")
    print((p.stdout + p.stderr).strip(), flush=True)
    if p.returncode != 0:
        sys.exit(f"exit code {p.returncode}")
    return np.load(save)


def main():
    p = argparse.ArgumentParser()
    for flag in ("--mpiexec", "--python", "--script", "--workdir"):
        p.add_argument(flag, required=True)
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    distributed = run(args, 2, ["--batch", "32"], os.path.join(args.workdir, "ringdp.npz"))
    alone = run(args, 1, ["--plain", "--batch", "64"], os.path.join(args.workdir, "plain.npz"))
    worst = 0.0
    for name in alone:
        a, b = distributed[name], alone[name]
        difference = float(np.abs(a - b).max() / np.abs(b).max())
        worst = max(worst, difference)
        print(f"{name:10} {str(b.shape):12} relative difference {difference:.2e}")
    ok = set(distributed) == set(alone) and worst <= TOLERANCE
    print(f"after {STEPS} steps: largest relative difference {worst:.2e} "
          f"({'within' if ok else 'NOT within'} {TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
