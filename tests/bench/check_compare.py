#!/usr/bin/python3
"""Runs bench/compare/ringdp_vs_pytorch.py on tiny runs and checks what it promises, from its
two CSV files: one row per (round, batch, variant), the PyTorch variants present exactly
when PyTorch can be imported by the given interpreter (and skipped with the install hint
otherwise), positive rates, and every ratio recomputed here as the median over rounds of
the per-round ratios. Timings are never asserted.

usage: check_compare.py --build BUILD_DIR --workdir DIR --mpirun MPIRUN [--python PY]
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "compare",
                      "ringdp_vs_pytorch.py")
RINGDP = ["ringdp-1x1", "ringdp-2x1", "ringdp-1x2"]
PYTORCH = ["pytorch-1", "ddp-2"]

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def has_torch(python):
    probe = "import torch, torch.distributed as d; assert d.is_gloo_available()"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--mpirun", required=True)
    parser.add_argument("--python", default="/usr/bin/python3")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    out = os.path.join(args.workdir, "compare.csv")
    rounds, batches = 2, [8]
    cmd = [sys.executable, SCRIPT, "--build", args.build, "--mpirun", args.mpirun, "--python",
           args.python, "--model", "20-16-5", "--rounds", str(rounds), "--steps", "5",
           "--warmup", "1", "--batch", *map(str, batches), "--csv", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"check_compare: the script failed ({proc.returncode})")

    torch = has_torch(args.python)
    two_cpus = len(os.sched_getaffinity(0)) >= 2
    expected = ["ringdp-1x1"] + (["pytorch-1"] if torch else [])
    if two_cpus:
        expected += ["ringdp-2x1"] + (["ddp-2"] if torch else []) + ["ringdp-1x2"]
    check(torch or "apt-get install python3-torch libopenblas0-pthread" in proc.stdout,
          "without PyTorch the script must say how to install it")

    with open(out) as f:
        runs = list(csv.DictReader(f))
    keys = [(int(r["round"]), int(r["batch"]), r["variant"]) for r in runs]
    want = [(rnd, b, v) for rnd in range(rounds) for b in batches for v in expected]
    check(keys == want, f"run rows {keys}, expected {want}")
    for r in runs:
        check(float(r["samples_per_s"]) > 0 and float(r["step_ms"]) > 0, f"bad rates in {r}")
        if r["system"] == "ringdp":
            check(r["forward_ms"] != "" and float(r["backward_ms"]) > 0, f"no breakdown in {r}")

    with open(os.path.splitext(out)[0] + "-ratios.csv") as f:
        ratios = list(csv.DictReader(f))
    rate = {(int(r["round"]), int(r["batch"]), r["variant"]): float(r["samples_per_s"])
            for r in runs}
    seen = 0
    for row in ratios:
        b, num, den = int(row["batch"]), row["numerator"], row["denominator"]
        check(num in expected and den in expected, f"ratio of a variant not run: {row}")
        per_round = [rate[(rnd, b, num)] / rate[(rnd, b, den)] for rnd in range(rounds)]
        check(abs(float(row["ratio"]) - statistics.median(per_round)) < 1e-3,
              f"ratio {row['ratio']} is not the median of {per_round}")
        seen += 1
    n_ratios = (1 if torch else 0) + ((1 if torch else 0) + 2 if two_cpus else 0)
    check(seen == n_ratios * len(batches), f"{seen} ratio rows, expected {n_ratios * len(batches)}")

    for message in failures:
        print(f"check_compare: FAILED: {message}")
    print(f"check_compare: {'FAILED' if failures else 'ok'} (PyTorch {'found' if torch else 'absent'})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
