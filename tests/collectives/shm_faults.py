#!/usr/bin/python3
"""A rank killed during a shared-memory allreduce ends the job, and leaves no file behind.

usage: shm_faults.py --driver EXE --mpiexec PATH --workdir DIR [--ranks N]

The node-local collectives share memory through MPI_Win_allocate_shared windows. Open MPI's
osc/sm component backs each window with a file in its backing directory
(osc_sm_backing_directory, default /dev/shm), named osc_sm.<host>.<jobid>.<rank>.<cid>, which
the window's first rank creates and unlinks as soon as every rank has mapped it. This test
points the backing directory at a fresh directory of its own, so that ringdp's files, and
only they, land there, and for each scenario:

- never:  a clean run must exit 0 and leave the directory empty;
- before: one rank dies (SIGKILL) before a call, the others wait for its arrival;
- inside: one rank dies one second into a call (after its arrival), the others asleep
          then arriving, and reading its announced input.

A killed run must end (mpirun non-zero) within the time limit instead of hanging, and the
directory must be empty afterwards. The same holds for the temporary directory ringdp has
no other reason to write to: nothing named osc_sm.* appears in TMPDIR.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

TIME_LIMIT = 60


def run(args, when, backing):
    env = dict(os.environ)
    env["OMPI_MCA_osc_sm_backing_directory"] = backing
    command = [args.mpiexec, "-n", str(args.ranks), "--oversubscribe", args.driver,
               "--victim", str(args.ranks - 1), "--when", when, "--calls", "20"]
    start = time.monotonic()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=TIME_LIMIT, start_new_session=True)
    except subprocess.TimeoutExpired:
        return None, TIME_LIMIT, ""
    return done.returncode, time.monotonic() - start, done.stdout + done.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--driver", required=True)
    parser.add_argument("--mpiexec", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--ranks", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    tmp = tempfile.gettempdir()
    before_tmp = set(glob.glob(os.path.join(tmp, "osc_sm.*")))
    failures = []
    for when in ("never", "before", "inside"):
        backing = tempfile.mkdtemp(prefix=f"backing-{when}-", dir=args.workdir)
        code, seconds, output = run(args, when, backing)
        left = os.listdir(backing)
        line = f"{when:6}: exit {code}, {seconds:.1f} s, files left {left}"
        print(line)
        if code is None:
            failures.append(f"{when}: the job hung (killed after {TIME_LIMIT} s)")
        elif when == "never" and (code != 0 or "done" not in output):
            failures.append(f"{when}: a clean run failed (exit {code}):\n{output}")
        elif when != "never" and code == 0:
            failures.append(f"{when}: the job exited 0 although a rank was killed")
        if left:
            failures.append(f"{when}: files left in the backing directory: {left}")
        shutil.rmtree(backing, ignore_errors=True)
    new_tmp = set(glob.glob(os.path.join(tmp, "osc_sm.*"))) - before_tmp
    if new_tmp:
        failures.append(f"osc_sm files appeared in {tmp}: {sorted(new_tmp)}")
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
