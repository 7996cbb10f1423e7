#!/usr/bin/python3
"""An exception no rank catches never leaves the job hanging (uncaught.py): raised by one
rank alone, it ends the job through MPI_Abort, promptly; raised by every rank together (an
agreed error), the ranks exit with their tracebacks and no abort.

usage: uncaught_check.py --mpiexec PATH --python PATH --script PATH
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

LIMIT = 60  # seconds: a run still going by then is a hang


def run(args, case, logs):
    """Runs the case at 2 ranks; returns the exit code and each rank's standard error."""
    cmd = [args.mpiexec, "-np", "2", args.python, args.script, case, logs]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT)
    except subprocess.TimeoutExpired:
        sys.exit(f"{case}: hang: no exit within {LIMIT} s")
    print(f"== {case}: exit code {p.returncode} after {time.monotonic() - start:.1f} s\n"
          f"{(p.stdout + p.stderr).strip()}", flush=True)
    ranks = []
    for rank in range(2):
        path = os.path.join(logs, f"{case}.{rank}.txt")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                ranks.append(f.read())
        except FileNotFoundError:  # the rank ended before it opened its file
            ranks.append("")
        print(f"-- rank {rank}:\n{ranks[rank].strip()}", flush=True)
    print(flush=True)
    return p.returncode, ranks


def main():
    p = argparse.ArgumentParser()
    for flag in ("--mpiexec", "--python", "--script"):
        p.add_argument(flag, required=True)
    args = p.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as logs:
        code, ranks = run(args, "one", logs)
        if code == 0 or "ringdp: rank 1: uncaught RuntimeError: ending the job" not in ranks[1]:
            failures.append("one: expected a non-zero exit and ringdp's abort line from rank 1")
        code, ranks = run(args, "all", logs)
        error = "ValueError: ringdp: rank 1: allreduce: array is read-only"
        if code == 0 or any(error not in r or "ending the job" in r for r in ranks):
            failures.append("all: expected each rank's ValueError naming rank 1, and no abort")
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
