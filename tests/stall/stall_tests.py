#!/usr/bin/python3
"""End-to-end reliability tests of ringdp-train at 3 ranks: stalls and a dead rank.

usage: stall_tests.py CASE --exe PATH --mpiexec PATH --data FILE --workdir DIR

Cases:
  late_rank   rank 2 sleeps 3 s before its first collective of step 5 (test hook
              RINGDP_TEST_STALL_*), RINGDP_STALL_SECONDS=1: rank 0 names rank 2 as not arrived
              and rank 1 as waiting, at step 5; the run then ends normally.
  late_rank0  the same with rank 0 late: ranks 1 and 2 each print one line naming rank 0.
  abort       rank 2 sleeps 300 s, RINGDP_STALL_ABORT_SECONDS=2: the job ends non-zero within
              seconds with rank 0's stall line, and no rank is left running.
  dead_rank   one rank is SIGKILLed after the first checkpoint: mpirun exits non-zero within
              30 s and no rank survives; the last checkpoint loads; --resume runs to the end
              and its final parameters and optimizer state equal, bit for bit, those of an
              uninterrupted run of the same configuration.
  dead_rank_held  the same kill with Open MPI told not to end the job
              (orte_abort_on_non_zero_status=0): RINGDP_STALL_ABORT_SECONDS=3 ends it, and
              rank 0's message names the dead rank as not arrived.

Every run has a timeout, so a hang fails the test. Checkpoints are read back with h5py.
"""

import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import h5py
import numpy as np

RANKS = 3
RUN_TIMEOUT = 90  # seconds; a run that takes longer is reported as a hang
EXIT_LIMIT = 30  # seconds from SIGKILL to mpirun's exit (the bound)
SMALL = ["--model", "784-64-10", "--batch", "32", "--quiet"]
PARAMS_784_64_10 = 784 * 64 + 64 + 64 * 10 + 10


class Fail(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Fail(what)


def job_env(extra):
    """The test's environment plus `extra`, and a marker that identifies this job's ranks."""
    env = dict(os.environ)
    env.update(extra)
    env["RINGDP_STALL_TEST_RUN"] = uuid.uuid4().hex
    return env


def command(args):
    return [ARGS.mpiexec, "-np", str(RANKS), ARGS.exe, "--data", ARGS.data] + args


def show(cmd, rc, took, stdout, stderr):
    print(f"$ {' '.join(cmd[3:])}   [rc {rc}, {took:.1f} s]")
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        if text.strip():
            print(f"  {name}: " + text.strip().replace("\n", "\n          "))


def run(args, extra_env=None, expect_ok=True):
    cmd = command(args)
    env = job_env(extra_env or {})
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                           cwd=ARGS.workdir, env=env)
    except subprocess.TimeoutExpired:
        raise Fail(f"hang: no exit within {RUN_TIMEOUT} s: {' '.join(cmd)}")
    took = time.monotonic() - start
    show(cmd, p.returncode, took, p.stdout, p.stderr)
    if expect_ok:
        check(p.returncode == 0, f"exit code {p.returncode}, expected 0")
    check(not survivors(env["RINGDP_STALL_TEST_RUN"]), "ranks still running after mpirun ended")
    return p, took


def ranks_of_job(marker):
    """{world rank: pid} of the processes whose environment carries `marker`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"RINGDP_STALL_TEST_RUN={marker}".encode() not in env:
            continue
        for item in env:
            if item.startswith(b"OMPI_COMM_WORLD_RANK="):
                found[int(item.split(b"=", 1)[1])] = int(entry)
    return found


def survivors(marker):
    """Ranks of the job still alive (zombies, already dead, do not count)."""
    alive = []
    for rank, pid in ranks_of_job(marker).items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(rank)
    return alive


def stall_lines(stderr):
    return [l for l in stderr.splitlines() if "ringdp: stall:" in l or ": stall:" in l]


HOOK = {"RINGDP_TEST_STALL_STEP": "5", "RINGDP_STALL_SECONDS": "1"}
# The late rank's first collective of step 5 is the metrics reduction, or, when the trainer
# knows the step's sample count in advance, the first gradient reduction (with buckets).
BUCKETS = r"(, buckets? [0-9-]+)?"


def case_late_rank():
    env = dict(HOOK, RINGDP_TEST_STALL_RANK="2", RINGDP_TEST_STALL_SECONDS="3")
    p, _ = run(SMALL + ["--epochs", "1"], env)
    lines = stall_lines(p.stderr)
    named = re.compile(r"^ringdp: stall: rank 0 waited [0-9.]+ s in (allreduce #\d+ \(step 5"
                       + BUCKETS + r"\)); ranks not arrived: 2 \(rank 1 waiting in the same call\)$")
    hits = [m for m in map(named.match, lines) if m]
    check(hits, "rank 0 did not print 'ranks not arrived: 2 (rank 1 waiting in the same call)' "
                "for step 5")
    call = hits[0].group(1)
    check(all(m.group(1) == call for m in hits), "the lines name different calls")
    check(f"ringdp: stall: rank 0: {call} ended after" in p.stderr,
          "rank 0 did not say that the stall ended")
    check(not [l for l in lines if "has not answered" in l],
          "a rank printed 'rank 0 has not answered' although rank 0 was waiting")
    # Printed once per RINGDP_STALL_SECONDS, not per poll: a 3 s stall gives 2 or 3 lines.
    check(len(hits) <= 4, f"{len(hits)} lines for a 3 s stall: spamming")


def case_late_rank0():
    env = dict(HOOK, RINGDP_TEST_STALL_RANK="0", RINGDP_TEST_STALL_SECONDS="3")
    p, _ = run(SMALL + ["--epochs", "1"], env)
    lines = stall_lines(p.stderr)
    silent = re.compile(r"^ringdp: stall: rank ([12]) waited [0-9.]+ s in allreduce #\d+ "
                        r"\(step 5" + BUCKETS + r"\); rank 0 has not answered its stall report")
    ranks = sorted(int(m.group(1)) for m in map(silent.match, lines) if m)
    check(ranks == [1, 2], f"expected one line naming rank 0 from each of ranks 1 and 2, "
                           f"got lines from ranks {ranks}")
    check(not [l for l in lines if "ranks not arrived" in l],
          "rank 0 printed a stall line although it was the late rank")


def case_abort():
    env = dict(HOOK, RINGDP_TEST_STALL_RANK="2", RINGDP_TEST_STALL_SECONDS="300",
               RINGDP_STALL_ABORT_SECONDS="2")
    p, took = run(SMALL + ["--epochs", "1"], env, expect_ok=False)
    check(p.returncode != 0, "the job exited 0 although it was aborted")
    # Rank 2 sleeps 300 s: ending long before that means the abort, not the sleep, ended
    # it (the bound leaves room for a slow start on a loaded machine).
    check(took < 60, f"the job took {took:.1f} s to end; the abort limit is 2 s")
    check(re.search(r"ringdp: rank 0: stall: rank 0 waited 2\.\d s in allreduce #\d+ \(step 5"
                    + BUCKETS + r"\); ranks not arrived: 2 \(rank 1 waiting in the same call\); "
                    r"RINGDP_STALL_ABORT_SECONDS=2 reached; aborting the job", p.stderr),
          "rank 0's abort message naming rank 2 is missing")
    print(f"abort: job ended {took:.1f} s after start (stall at step 5, abort limit 2 s)")


def latest_checkpoint(directory):
    files = sorted(glob.glob(os.path.join(directory, "checkpoint-s*.h5")))
    return files[-1] if files else None


def state_of(checkpoint):
    with h5py.File(checkpoint, "r") as f:
        arrays = {"parameters": f["parameters"][...]}
        for k in f["optimizer"].keys():
            arrays["optimizer/" + k] = f["optimizer"][k][...]
        step = int(f.attrs["step"])
    return arrays, step


def fresh(name):
    path = os.path.join(ARGS.workdir, name)
    subprocess.run(["rm", "-rf", path], check=True)
    os.makedirs(path)
    return path


def kill_after_first_checkpoint(config, checkpoint_dir, extra_env=None, victim=1):
    """Starts the run, SIGKILLs rank `victim` once the first checkpoint exists, waits for
    mpirun. Returns (completed process, seconds from the kill to mpirun's exit)."""
    cmd = command(config + ["--checkpoint-dir", checkpoint_dir])
    env = job_env(extra_env or {})
    marker = env["RINGDP_STALL_TEST_RUN"]
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=ARGS.workdir, env=env)
    try:
        while latest_checkpoint(checkpoint_dir) is None:
            check(p.poll() is None, "the run ended before writing its first checkpoint")
            check(time.monotonic() - start < RUN_TIMEOUT, "no checkpoint written in time")
            time.sleep(0.01)
        ranks = ranks_of_job(marker)
        check(sorted(ranks) == list(range(RANKS)), f"found ranks {sorted(ranks)} of the job")
        os.kill(ranks[victim], signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            p.stdout_text, p.stderr_text = p.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail(f"hang: mpirun still running {RUN_TIMEOUT} s after rank {victim} was killed")
        to_exit = time.monotonic() - killed_at
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    show(cmd, p.returncode, time.monotonic() - start, p.stdout_text, p.stderr_text)
    print(f"dead rank: rank {victim} SIGKILLed {killed_at - start:.2f} s into the run; mpirun "
          f"exited with code {p.returncode} {to_exit:.2f} s later")
    check(p.returncode != 0, "mpirun exited 0 after a rank was killed")
    check(to_exit < EXIT_LIMIT, f"mpirun took {to_exit:.1f} s to exit (limit {EXIT_LIMIT} s)")
    check(not survivors(marker), f"ranks {survivors(marker)} survived mpirun")
    return p, to_exit


# 3 epochs of 84 steps at 3 ranks; a checkpoint every 20 steps, all kept.
DEAD_CONFIG = SMALL + ["--epochs", "3", "--seed", "7", "--checkpoint-every", "20s",
                       "--keep", "1000"]


def case_dead_rank():
    reference_dir = fresh("dead-reference")
    run(DEAD_CONFIG + ["--checkpoint-dir", reference_dir])
    reference, reference_step = state_of(latest_checkpoint(reference_dir))

    killed_dir = fresh("dead-killed")
    kill_after_first_checkpoint(DEAD_CONFIG, killed_dir)

    # The newest checkpoint is whole (written to a temporary name, then renamed).
    last = latest_checkpoint(killed_dir)
    arrays, step = state_of(last)
    print(f"dead rank: last checkpoint {os.path.basename(last)} (step {step}) loads; "
          f"left-over temporaries: {glob.glob(os.path.join(killed_dir, '.*'))}")
    check(arrays["parameters"].size == PARAMS_784_64_10, "the checkpoint's arena has a wrong size")
    check(bool(np.all(np.isfinite(arrays["parameters"]))), "the checkpoint holds non-finite values")
    check(step < reference_step, f"the killed run reached the end (step {step}) before the kill")

    run(DEAD_CONFIG + ["--checkpoint-dir", killed_dir, "--resume"])
    resumed, resumed_step = state_of(latest_checkpoint(killed_dir))
    check(resumed_step == reference_step, f"resumed run ended at step {resumed_step}, "
                                          f"the reference at {reference_step}")
    check(sorted(resumed) == sorted(reference), "different optimizer state arrays")
    for name in reference:
        check(resumed[name].dtype == reference[name].dtype and
              resumed[name].tobytes() == reference[name].tobytes(),
              f"{name} differs from the uninterrupted run")
    print(f"dead rank: resumed from step {step} to {resumed_step}: parameters and optimizer "
          f"state equal the uninterrupted run's bit for bit")


def case_dead_rank_held():
    # Open MPI told not to end the job when a rank dies: the survivors would wait for the
    # dead rank for ever (shared memory never reports a dead peer). The stall inspector's
    # abort limit ends them, naming the dead rank as not arrived.
    env = {"OMPI_MCA_orte_abort_on_non_zero_status": "0", "RINGDP_STALL_SECONDS": "1",
           "RINGDP_STALL_ABORT_SECONDS": "3"}
    p, to_exit = kill_after_first_checkpoint(DEAD_CONFIG, fresh("dead-held"), env)
    check(re.search(r"ringdp: rank 0: stall: rank 0 waited 3\.\d s in [a-z_]+ #\d+[^;]*; "
                    r"ranks not arrived: 1 \(", p.stderr_text),
          "rank 0's abort message naming rank 1 as not arrived is missing")
    check(to_exit >= 3, f"the job ended {to_exit:.1f} s after the kill, before the 3 s abort "
                        f"limit: Open MPI ended it, so this case tests nothing")


CASES = {"late_rank": case_late_rank, "late_rank0": case_late_rank0, "abort": case_abort,
         "dead_rank": case_dead_rank, "dead_rank_held": case_dead_rank_held}


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--exe", required=True)
    parser.add_argument("--mpiexec", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--workdir", required=True)
    ARGS = parser.parse_args()
    # Runs start in the work directory: make the paths independent of the caller's.
    ARGS.exe, ARGS.data = os.path.abspath(ARGS.exe), os.path.abspath(ARGS.data)
    os.makedirs(ARGS.workdir, exist_ok=True)
    try:
        CASES[ARGS.case]()
    except Fail as e:
        print(f"FAIL ({ARGS.case}): {e}")
        return 1
    print(f"PASS ({ARGS.case})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
