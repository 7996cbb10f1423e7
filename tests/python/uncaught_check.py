#!/usr/bin/python3
"""An exception no rank catches never leaves the job hanging (uncaught.py): raised by one
rank alone, it ends the job through MPI_Abort, promptly; raised by every rank together (an
agreed error), the ranks exit with their tracebacks and no abort.

usage: uncaught_check.py --mpiexec PATH --python PATH --script PATH
"""

import argparse
import subprocess
import sys
import time

LIMIT = 60  # seconds: a run still going by then is a hang


def run(args, case):
    cmd = [args.mpiexec, "-np", "2", args.python, args.script, case]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT)
    except subprocess.TimeoutExpired:
        sys.exit(f"{case}: hang: no exit within {LIMIT} s")
    output = p.stdout + p.stderr
    print(f"== {case}: exit code {p.returncode} after {time.monotonic() - start:.1f} s\n"
          f"{output.strip()}\n", flush=True)
    return p.returncode, output


def main():
    p = argparse.ArgumentParser()
    for flag in ("--mpiexec", "--python", "--script"):
        p.add_argument(flag, required=True)
    args = p.parse_args()
    failures = []
    code, output = run(args, "one")
    if code == 0 or "ringdp: rank 1: uncaught RuntimeError: ending the job" not in output:
        failures.append("one: expected a non-zero exit and ringdp's abort line from rank 1")
    code, output = run(args, "all")
    if (code == 0 or output.count("ValueError: ringdp: rank 1: allreduce: array is read-only") != 2
            or "ending the job" in output):
        failures.append("all: expected both ranks' ValueError naming rank 1, and no abort")
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
