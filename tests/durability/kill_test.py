#!/usr/bin/python3
"""Crash-safe writes, tested by killing the writer at random moments.

usage: kill_test.py checkpoint --writer EXE --mpiexec PATH --workdir DIR [--kills N] [--seed S]
       kill_test.py synth --data-exe EXE --mpiexec PATH --workdir DIR [--kills N] [--seed S]

Each round starts a writer job in a session of its own, waits a delay drawn from a seeded
RNG over the measured duration of a write, then SIGKILLs every process of the session at
once (mpirun and all its ranks: a node losing power, not a polite shutdown). It then checks
what is on disk, here with h5py (independent of ringdp's reader):

- checkpoint: every visible checkpoint-s*.h5 opens, its Fletcher-32 checksums verify on
  read, and its arrays are exactly the content of its step (a pure function of the step,
  the same in checkpoint_writer.cpp); the newest is either the one before the round (old)
  or one the killed writer published (new). Temporaries (".checkpoint-s*.h5.tmp-<pid>") may
  remain; the next writer, before writing, loads every visible checkpoint through ringdp's
  own loader and reports a verdict, and its first save deletes the temporaries of dead
  writers, which the last round checks.
- synth: `mpirun -np 2 ringdp-data synth --out F` alternates between two seeds. Most kills
  are timed from the moment the temporary F.partial appears (the write's start, seen by
  polling), over the write's calibrated length; some land before it, some just after the
  rename. Afterwards F is absent, or byte-for-byte the datasets of one of two uninterrupted reference runs: the old content
  (same inode as before the round) or the new one. A stray F.partial is allowed (the next
  run overwrites it).

A round "landed mid-write" when the killed writer's temporary file is on disk afterwards.
The summary line gives kills, mid-write landings and outcomes.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

FLOATS = 1 << 19  # checkpoint arena: 2 MiB of parameters + 2 MiB of momentum
ROUND_TIMEOUT = 60


class Fail(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Fail(what)


def session_pids(sid):
    """Every process of session `sid` (mpirun starts the ranks in its session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ... A zombie
        # (state Z) is dead already, only not yet reaped by its new parent.
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_session(proc):
    """SIGKILL every process of proc's session at once, then wait until all are gone."""
    sid = proc.pid  # start_new_session: the leader's pid is the session id
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        pids = session_pids(sid)
        if not pids:
            break
        # Repeated while any is left: a process forked during the first sweep is caught too.
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    proc.wait(timeout=ROUND_TIMEOUT)
    check(not session_pids(sid), f"processes of session {sid} survived SIGKILL for 10 s")


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=ARGS.workdir)


def read_until(proc, prefix, deadline):
    """Lines of proc's output up to and including the first starting with `prefix`."""
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise Fail(f"writer exited before '{prefix}': {''.join(lines)}")
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise Fail(f"no '{prefix}' within {ROUND_TIMEOUT} s")


# --- checkpoints -------------------------------------------------------------------------

def pattern(step, sign):
    k = (np.uint64(step) * np.uint64(7919) + np.arange(FLOATS, dtype=np.uint64) * np.uint64(31))
    return (sign * ((k % np.uint64(65536)).astype(np.float32) / np.float32(64) - np.float32(512))
            ).astype(np.float32)


def checkpoint_files(directory):
    names = sorted(os.listdir(directory))
    visible = [n for n in names if n.startswith("checkpoint-s") and n.endswith(".h5")]
    temps = [n for n in names if n.startswith(".") and ".tmp-" in n]
    others = [n for n in names if n not in visible and n not in temps]
    check(not others, f"unexpected files in the checkpoint directory: {others}")
    return visible, temps


def verify_checkpoints(directory):
    """Every visible checkpoint is complete and holds its step's content; returns the steps."""
    visible, temps = checkpoint_files(directory)
    steps = []
    for name in visible:
        step = int(name[len("checkpoint-s"):-len(".h5")])
        try:
            with h5py.File(os.path.join(directory, name), "r") as f:
                check(int(f.attrs["step"]) == step, f"{name}: step attribute {f.attrs['step']}")
                # Reading runs the Fletcher-32 filter: a damaged chunk raises here.
                params = f["parameters"][...]
                momentum = f["optimizer"]["momentum"][...]
        except (OSError, KeyError) as e:
            raise Fail(f"{name} is not a complete checkpoint: {e}")
        check(np.array_equal(params, pattern(step, 1.0)), f"{name}: parameters are not step {step}'s")
        check(np.array_equal(momentum, pattern(step, -1.0)), f"{name}: momentum is not step {step}'s")
        steps.append(step)
    return steps, temps


def writer_cmd(first_step, count=None):
    cmd = [ARGS.mpiexec, "-np", "1", ARGS.writer, "--dir", ARGS.dir, "--first-step", str(first_step),
           "--floats", str(FLOATS)]
    if count is not None:
        cmd += ["--count", str(count)]
    return cmd


def parse_verdict(lines):
    verdicts = [l.strip() for l in lines if l.startswith("verdict")]
    check(len(verdicts) == 1, f"no verdict in {lines}")
    check(verdicts[0].startswith("verdict ok"), f"ringdp's loader: {verdicts[0]}")
    return verdicts[0]


def case_checkpoint():
    ARGS.dir = os.path.join(ARGS.workdir, "checkpoints")
    os.makedirs(ARGS.dir, exist_ok=True)
    for n in os.listdir(ARGS.dir):
        os.remove(os.path.join(ARGS.dir, n))

    # Calibration: an uninterrupted writer; its saves give the duration of one write.
    p = subprocess.run(writer_cmd(1, count=8), capture_output=True, text=True, timeout=ROUND_TIMEOUT,
                       cwd=ARGS.workdir)
    check(p.returncode == 0, f"calibration run failed: {p.stdout}{p.stderr}")
    seconds = [float(l.split("seconds=")[1]) for l in p.stdout.splitlines() if l.startswith("saved")]
    check(len(seconds) == 8, f"calibration: {p.stdout}")
    write = sorted(seconds)[len(seconds) // 2]
    print(f"calibration: median checkpoint write {write * 1000:.1f} ms "
          f"({2 * FLOATS * 4 / 2**20:.0f} MiB of arrays)")
    steps, temps = verify_checkpoints(ARGS.dir)
    check(steps == [7, 8] and not temps, f"after calibration: steps {steps}, temps {temps}")

    rng = random.Random(ARGS.seed)
    stats = {"kills": 0, "mid_write": 0, "old": 0, "new": 0, "stray_temps_seen": 0}
    next_step = 100
    for round_ in range(ARGS.kills):
        before = max(verify_checkpoints(ARGS.dir)[0], default=None)
        first = next_step
        next_step += 10000
        proc = start(writer_cmd(first))
        try:
            lines = read_until(proc, "ready", time.monotonic() + ROUND_TIMEOUT)
            parse_verdict(lines)
            pid = int(lines[-1].split("pid=")[1])
            # Spread the kills over the first three writes of this writer.
            time.sleep(rng.uniform(0.0, 3.0 * write))
        finally:
            kill_session(proc)
        stats["kills"] += 1
        steps, temps = verify_checkpoints(ARGS.dir)
        newest = max(steps, default=None)
        if newest is not None and newest >= first:
            stats["new"] += 1
        else:
            check(newest == before, f"round {round_}: newest checkpoint {newest}, was {before}")
            stats["old"] += 1
        if any(t.endswith(f".tmp-{pid}") for t in temps):
            stats["mid_write"] += 1
        stats["stray_temps_seen"] = max(stats["stray_temps_seen"], len(temps))

    # A last, uninterrupted writer: ringdp's loader checks the final state, and its save
    # removes every temporary the killed writers left.
    p = subprocess.run(writer_cmd(next_step, count=1), capture_output=True, text=True,
                       timeout=ROUND_TIMEOUT, cwd=ARGS.workdir)
    check(p.returncode == 0, f"final run failed: {p.stdout}{p.stderr}")
    parse_verdict(p.stdout.splitlines())
    steps, temps = verify_checkpoints(ARGS.dir)
    check(max(steps) == next_step and not temps, f"after the final save: steps {steps}, temps {temps}")
    check(stats["mid_write"] >= ARGS.kills // 5,
          f"only {stats['mid_write']} of {ARGS.kills} kills landed mid-write: the test would "
          f"not show much; is the write duration ({write * 1000:.1f} ms) measured right?")
    print("kill test (checkpoints): {kills} kills, {mid_write} landed mid-write (temporary on "
          "disk), outcomes: {old} old checkpoint kept, {new} new checkpoint complete, 0 broken; "
          "at most {stray_temps_seen} stray temporaries at once, none after the next save"
          .format(**stats))


# --- synth datasets ----------------------------------------------------------------------

SYNTH = ["--samples", "6000", "--test-samples", "1000", "--features", "128", "--classes", "10",
         "--chunk-rows", "256"]
DATASETS = ["/train/images", "/train/labels", "/test/images", "/test/labels"]
POLL = 0.002  # seconds between looks at the output directory
EARLY_KILLS = 0.15  # share of the rounds killed before the write starts
LATE_KILLS = 0.15  # share killed right after the rename


def synth_cmd(out, seed):
    return [ARGS.mpiexec, "-np", "2", ARGS.data_exe, "synth", "--out", out, "--seed", str(seed)] + SYNTH


def read_dataset_file(path):
    try:
        with h5py.File(path, "r") as f:
            return {name: f[name][...] for name in DATASETS}
    except (OSError, KeyError) as e:
        raise Fail(f"'{path}' is not a complete dataset: {e}")


def same_content(a, b):
    return all(a[n].dtype == b[n].dtype and np.array_equal(a[n], b[n]) for n in DATASETS)


def case_synth():
    seeds = (11, 12)
    refs = {}
    ref_paths = {}
    created = []  # from the job's start to its temporary file's appearance
    windows = []  # from the temporary's appearance to its rename: the write itself
    for seed in seeds:
        ref = os.path.join(ARGS.workdir, f"reference-{seed}.h5")
        for f in (ref, ref + ".partial"):
            if os.path.exists(f):
                os.remove(f)
        t0 = time.monotonic()
        proc = subprocess.Popen(synth_cmd(ref, seed), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=ARGS.workdir)
        seen = renamed = None
        while proc.poll() is None:
            now = time.monotonic() - t0
            if seen is None and os.path.exists(ref + ".partial"):
                seen = now
            if seen is not None and renamed is None and os.path.exists(ref):
                renamed = now
            time.sleep(POLL)
        output = proc.stdout.read()
        check(proc.returncode == 0, f"reference run failed: {output}")
        check(seen is not None, "the reference run's temporary file was never seen")
        if renamed is None:  # renamed between the last poll and the job's end
            renamed = time.monotonic() - t0
        created.append(seen)
        windows.append(renamed - seen)
        refs[seed] = read_dataset_file(ref)
        ref_paths[seed] = ref
    check(not same_content(refs[seeds[0]], refs[seeds[1]]), "the two seeds gave the same data")
    write_start = min(created)
    write = max(windows)
    print(f"calibration: a 2-rank synth job creates its temporary file {write_start:.2f} s after "
          f"mpirun starts and renames it {write * 1000:.0f} ms later")

    out = os.path.join(ARGS.workdir, "synth.h5")
    partial = out + ".partial"
    for f in (out, partial):
        if os.path.exists(f):
            os.remove(f)
    rng = random.Random(ARGS.seed)
    stats = {"kills": 0, "mid_write": 0, "absent": 0, "old": 0, "new": 0}
    content_seed = None  # seed of what `out` holds

    def identity(f):
        st = os.stat(f) if os.path.exists(f) else None
        return None if st is None else (st.st_ino, st.st_mtime_ns)

    for round_ in range(ARGS.kills):
        seed = seeds[round_ % 2]
        # Every third round starts without the output (a first write); the others replace
        # an existing file (the other seed's reference, if the last round left none).
        if round_ % 3 == 0:
            if os.path.exists(out):
                os.remove(out)
        elif not os.path.exists(out):
            other = seeds[(round_ + 1) % 2]
            shutil.copyfile(ref_paths[other], out)
            content_seed = other
        before = identity(out)
        partial_before = identity(partial)
        proc = start(synth_cmd(out, seed))
        try:
            phase = rng.random()
            deadline = time.monotonic() + ROUND_TIMEOUT

            def wait_for_change(path, old):
                while identity(path) == old and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(POLL)

            if phase < EARLY_KILLS:
                # Before the write: during mpirun's and MPI's start-up.
                time.sleep(rng.uniform(0.0, write_start))
            elif phase < EARLY_KILLS + LATE_KILLS:
                # Just after the rename, while the ranks finalize.
                wait_for_change(out, before)
            else:
                # Anchored to the write itself, not to the job's start (whose start-up time
                # varies far more than the write): wait until the temporary is created or
                # rewritten, then kill at a moment drawn over the write's calibrated length.
                wait_for_change(partial, partial_before)
                time.sleep(rng.uniform(0.0, 1.2 * write))
        finally:
            kill_session(proc)
        stats["kills"] += 1
        # The killed job had created or rewritten the temporary, and not renamed it yet.
        partial_now = identity(partial)
        if partial_now is not None and partial_now != partial_before:
            stats["mid_write"] += 1
        now = identity(out)
        if now is None:
            check(before is None, f"round {round_}: '{out}' vanished")
            stats["absent"] += 1
            continue
        content = read_dataset_file(out)
        if now == before:
            check(same_content(content, refs[content_seed]), f"round {round_}: the old file changed")
            stats["old"] += 1
        else:
            check(same_content(content, refs[seed]), f"round {round_}: the new file is not seed {seed}'s")
            content_seed = seed
            stats["new"] += 1
    check(stats["mid_write"] >= ARGS.kills // 5,
          f"only {stats['mid_write']} of {ARGS.kills} kills landed mid-write: the test would not "
          f"show much (the write took {write * 1000:.0f} ms at calibration)")
    check(stats["new"] >= 1, "no round completed: the delays never reached the end of a job")
    print("kill test (synth, 2 ranks): {kills} kills, {mid_write} landed mid-write (.partial "
          "written in the round), outcomes: {absent} absent, {old} old file intact, {new} new "
          "file complete, 0 broken".format(**stats))


CASES = {"checkpoint": case_checkpoint, "synth": case_synth}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--writer")
    parser.add_argument("--data-exe")
    parser.add_argument("--mpiexec", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    ARGS = parser.parse_args()
    ARGS.workdir = os.path.join(ARGS.workdir, ARGS.case)
    os.makedirs(ARGS.workdir, exist_ok=True)
    start_time = time.monotonic()
    try:
        CASES[ARGS.case]()
    except Fail as e:
        print(f"FAILED: {e}")
        sys.exit(1)
    print(f"PASSED in {time.monotonic() - start_time:.1f} s")
