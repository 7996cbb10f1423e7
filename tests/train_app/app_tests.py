#!/usr/bin/python3
"""End-to-end tests of ringdp-train under mpirun, one case per CTest test.

usage: app_tests.py CASE --exe PATH --mpiexec PATH --data FILE --workdir DIR

Every run has a timeout, so a hang fails the test instead of stalling CI. Files are read
back independently: checkpoints with h5py, the metrics with the csv module, the timeline
with the json module. Runs use a small model (784-64-10) on the bundled data so the whole
set stays within about a minute on 2 cores.
"""

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

RUN_TIMEOUT = 60  # seconds; a run that takes longer is reported as a hang
SMALL = ["--model", "784-64-10", "--batch", "32", "--quiet"]
PARAMS_784_64_10 = 784 * 64 + 64 + 64 * 10 + 10  # the arena of the small model


class Fail(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Fail(what)


def run(args, ranks=2, expect_ok=True):
    cmd = [ARGS.mpiexec, "-np", str(ranks), ARGS.exe] + args
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ARGS.workdir)
    except subprocess.TimeoutExpired:
        raise Fail(f"hang: no exit within {RUN_TIMEOUT} s: {' '.join(cmd)}")
    took = time.monotonic() - start
    print(f"$ {' '.join(cmd[3:])}   [rc {p.returncode}, {took:.1f} s]")
    if p.stdout.strip():
        print("  stdout: " + p.stdout.strip().replace("\n", "\n          "))
    if p.stderr.strip():
        print("  stderr: " + p.stderr.strip().replace("\n", "\n          "))
    if expect_ok:
        check(p.returncode == 0, f"exit code {p.returncode}, expected 0")
    return p


def expect_failure(args, needle, ranks=2):
    """Non-zero exit, and our one-line message (mentioning `needle`) on stderr."""
    p = run(args, ranks=ranks, expect_ok=False)
    check(p.returncode != 0, "expected a non-zero exit code")
    ours = [l for l in p.stderr.splitlines() if l.startswith("ringdp-train:")]
    check(len(ours) == 1, f"expected exactly one 'ringdp-train:' line on stderr, got {ours}")
    check(needle in ours[0], f"message {ours[0]!r} does not mention {needle!r}")
    return ours[0]


def path(name):
    return os.path.join(ARGS.workdir, name)


def fresh(name):
    p = path(name)
    shutil.rmtree(p, ignore_errors=True)
    return p


def arena(checkpoint):
    with h5py.File(checkpoint, "r") as f:
        params = f["parameters"][...]
        state = {k: f["optimizer"][k][...] for k in f["optimizer"].keys()}
        attrs = {k: f.attrs[k] for k in f.attrs.keys()}
        steps = int(f["optimizer"].attrs["steps"])
    return params, state, attrs, steps


def checkpoints(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("checkpoint-s") and n.endswith(".h5"))


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --- cases ---------------------------------------------------------------------------------


def case_resume():
    """4 epochs straight == 2 epochs + --resume to 4, bit for bit (and from mid-epoch)."""
    common = SMALL + ["--data", ARGS.data, "--schedule", "cosine", "--schedule-epochs", "4"]
    straight = fresh("straight")
    run(common + ["--epochs", "4", "--checkpoint-dir", straight])
    halves = fresh("halves")
    run(common + ["--epochs", "2", "--checkpoint-dir", halves])
    half_params, _, half_attrs, _ = arena(os.path.join(halves, checkpoints(halves)[-1]))
    check(int(half_attrs["epoch"]) == 2, "the 2-epoch run's last checkpoint is not at epoch 2")
    run(common + ["--epochs", "4", "--checkpoint-dir", halves, "--resume"])

    a_params, a_state, a_attrs, a_steps = arena(os.path.join(straight, checkpoints(straight)[-1]))
    b_params, b_state, b_attrs, b_steps = arena(os.path.join(halves, checkpoints(halves)[-1]))
    check(a_params.size == PARAMS_784_64_10, f"arena of {a_params.size} floats")
    check(int(a_attrs["epoch"]) == 4 and int(b_attrs["epoch"]) == 4, "final checkpoints not at epoch 4")
    check(int(a_attrs["step"]) == int(b_attrs["step"]), "different global step counts")
    check(not same_bits(half_params, a_params), "training after epoch 2 changed nothing")
    check(same_bits(a_params, b_params),
          f"parameters differ: max |diff| {np.max(np.abs(a_params - b_params))}")
    check(a_state.keys() == b_state.keys() and all(same_bits(a_state[k], b_state[k]) for k in a_state),
          "optimizer state differs")
    check(a_steps == b_steps, "optimizer step counts differ")
    print(f"ok: 4 epochs straight == 2 + resume 2: {a_params.size} parameters bit-identical")

    # Mid-epoch: checkpoints every 37 steps (not a divisor of the epoch), resume one of them.
    mid = fresh("mid")
    run(common + ["--epochs", "2", "--checkpoint-dir", mid, "--checkpoint-every", "37s", "--keep", "100"])
    names = checkpoints(mid)
    _, _, attrs, _ = arena(os.path.join(mid, names[0]))
    check(int(attrs["step_in_epoch"]) == 37, f"first checkpoint at step {int(attrs['step_in_epoch'])} of the epoch")
    cont = fresh("mid-continued")
    run(common + ["--epochs", "4", "--checkpoint-dir", cont, "--resume", os.path.join(mid, names[0])])
    c_params, c_state, _, _ = arena(os.path.join(cont, checkpoints(cont)[-1]))
    check(same_bits(a_params, c_params), "resume from a mid-epoch checkpoint differs from the straight run")
    check(all(same_bits(a_state[k], c_state[k]) for k in a_state), "optimizer state differs (mid-epoch)")
    print("ok: resume from step 37 of epoch 1 == straight run, bit-identical")

    # A checkpoint taken at an epoch's last step (125 steps per epoch at 2 ranks x 32) is
    # at the start of the next epoch, and resumes from there.
    edge = fresh("epoch-edge")
    run(common + ["--epochs", "1", "--checkpoint-dir", edge, "--checkpoint-every", "125s"])
    _, _, attrs, _ = arena(os.path.join(edge, checkpoints(edge)[-1]))
    check(int(attrs["epoch"]) == 1 and int(attrs["step_in_epoch"]) == 0,
          f"the checkpoint after the epoch's last step is at epoch {int(attrs['epoch'])} "
          f"step {int(attrs['step_in_epoch'])}")
    run(common + ["--epochs", "4", "--checkpoint-dir", edge, "--resume"])
    e_params, _, _, _ = arena(os.path.join(edge, checkpoints(edge)[-1]))
    check(same_bits(a_params, e_params), "resume from an epoch's last step differs from the straight run")
    print("ok: resume from the checkpoint at the last step of epoch 1 == straight run, bit-identical")

    # Adam: its m, v and step count must come back too.
    adam = SMALL + ["--data", ARGS.data, "--optimizer", "adam", "--lr", "0.001", "--schedule", "constant"]
    a1 = fresh("adam-straight")
    run(adam + ["--epochs", "2", "--checkpoint-dir", a1])
    a2 = fresh("adam-halves")
    run(adam + ["--epochs", "1", "--checkpoint-dir", a2])
    run(adam + ["--epochs", "2", "--checkpoint-dir", a2, "--resume"])
    p1, s1, _, n1 = arena(os.path.join(a1, checkpoints(a1)[-1]))
    p2, s2, _, n2 = arena(os.path.join(a2, checkpoints(a2)[-1]))
    check(sorted(s1.keys()) == ["adam.m", "adam.v"], f"adam state {sorted(s1.keys())}")
    check(same_bits(p1, p2) and all(same_bits(s1[k], s2[k]) for k in s1) and n1 == n2,
          "adam: 2 epochs straight != 1 + resume 1")
    print("ok: adam 2 epochs straight == 1 + resume 1, bit-identical")


def case_outputs():
    """The metrics CSV and the timeline JSON parse and hold the promised fields."""
    metrics = path("metrics.csv")
    timeline = path("timeline.json")
    for f in (metrics, timeline):
        if os.path.exists(f):
            os.remove(f)
    epochs = 2
    run(SMALL + ["--data", ARGS.data, "--epochs", str(epochs), "--metrics", metrics, "--metrics-steps",
                 "--timeline", timeline])
    leftovers = [n for n in os.listdir(ARGS.workdir) if n.endswith(".partial") or ".tmp" in n]
    check(not leftovers, f"temporary files left behind: {leftovers}")

    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = ["kind", "epoch", "step", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
               "samples", "seconds", "samples_per_s", "data_s", "forward_s", "backward_s",
               "exposed_comm_s", "optimizer_s", "skipped_steps"]
    with open(metrics) as f:
        check(f.readline().strip().split(",") == columns, "metrics header")
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    step_rows = [r for r in rows if r["kind"] == "step"]
    check(len(epoch_rows) == epochs, f"{len(epoch_rows)} epoch rows")
    steps_per_epoch = int(epoch_rows[0]["step"])
    check(len(step_rows) == epochs * steps_per_epoch, f"{len(step_rows)} step rows")
    for e, r in enumerate(epoch_rows, start=1):
        check(int(r["epoch"]) == e and int(r["step"]) == e * steps_per_epoch, f"epoch row {e}")
        check(0.0 <= float(r["test_accuracy"]) <= 1.0 and float(r["test_loss"]) > 0, "test metrics")
        check(0.0 <= float(r["train_accuracy"]) <= 1.0 and float(r["train_loss"]) > 0, "train metrics")
        # Each epoch trains on every training sample once (8,000 in the bundled file).
        check(int(r["samples"]) == 8000, f"epoch {e} trained on {r['samples']} samples")
        in_epoch = [s for s in step_rows if int(s["epoch"]) == e]
        check(sum(int(s["samples"]) for s in in_epoch) == int(r["samples"]), "step samples != epoch samples")
        for part in ("data_s", "forward_s", "backward_s", "exposed_comm_s", "optimizer_s", "seconds"):
            check(float(r[part]) >= 0.0, f"{part} negative")
    check(float(epoch_rows[-1]["train_loss"]) < float(epoch_rows[0]["train_loss"]), "loss did not fall")
    print(f"ok: metrics: {len(epoch_rows)} epoch rows, {len(step_rows)} step rows, {len(columns)} columns")

    with open(timeline) as f:
        trace = json.load(f)
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    pids = sorted({e["pid"] for e in events})
    check(pids == [0, 1], f"tracks (pids) {pids}, expected one per rank [0, 1]")
    names = {e["name"] for e in events}
    for needed in ("data", "forward", "backward", "allreduce", "wait", "optimizer"):
        check(needed in names, f"no '{needed}' event in the timeline")
    for e in events:
        check(e["dur"] >= 0 and "ts" in e and "step" in e["args"], f"malformed event {e}")
    reduced = {}
    for e in events:
        if e["name"] == "allreduce":
            check(e["args"]["algorithm"] in ("ring", "rd", "mpi", "ps", "shm", "hier"), f"algorithm {e['args']}")
            key = (e["pid"], e["args"]["step"])
            reduced[key] = reduced.get(key, 0) + e["args"]["bytes"]
    # Every step of every rank reduces the whole gradient arena exactly once.
    check(len(reduced) == 2 * epochs * steps_per_epoch, f"{len(reduced)} (rank, step) pairs with reductions")
    check(set(reduced.values()) == {4 * PARAMS_784_64_10},
          f"bytes reduced per step {set(reduced.values())}, expected {4 * PARAMS_784_64_10}")
    for pid in pids:
        steps = {e["args"]["step"] for e in events if e["pid"] == pid and e["name"] == "forward"}
        check(len(steps) == epochs * steps_per_epoch, f"rank {pid} has {len(steps)} forward events")
        starts = [e["ts"] for e in events if e["pid"] == pid]
        check(starts == sorted(starts), f"rank {pid}'s events are not in start order")
    print(f"ok: timeline: {len(events)} events, tracks {pids}, every step reduces {4 * PARAMS_784_64_10} bytes")


def case_bad_flags():
    for args, needle in [
        (["--no-such-flag"], "--no-such-flag"),
        (["--epochs", "0"], "--epochs"),
        (["--batch", "lots"], "--batch"),
        (["--algo", "carrier-pigeon"], "carrier-pigeon"),
        (["--optimizer", "sgdd"], "sgdd"),
        (["--model", "784-x-10"], "--model"),
        (["--checkpoint-every", "3h"], "--checkpoint-every"),
        (["--resume"], "--checkpoint-dir"),
    ]:
        expect_failure(args, needle)
    p = run(["--help"])
    for flag in ("--data", "--model", "--epochs", "--batch", "--lr", "--momentum", "--optimizer", "--schedule",
                 "--scale-lr", "--algo", "--shuffle", "--io", "--virtual-ranks", "--cache-bytes", "--bucket-bytes",
                 "--seed", "--threads", "--checkpoint-dir", "--checkpoint-every", "--resume", "--metrics",
                 "--timeline", "--check", "--skip-nonfinite", "--quiet"):
        check(flag in p.stdout, f"--help does not list {flag}")
    check("784-512-256-10" in p.stdout, "--help does not show the default model")
    check("--batch is then per virtual rank" in " ".join(p.stdout.split()),
          "--help of --virtual-ranks does not say that --batch is then per virtual rank")
    print("ok: bad flags rejected with one line each; --help lists every flag")


def case_missing_data():
    expect_failure(SMALL + ["--data", path("no-such-file.h5")], "no-such-file.h5")
    print("ok: missing data file")


def case_corrupt_data():
    """A corrupt image chunk (not seen when the file is opened: only labels are scanned) is
    met by one rank during the epoch: every rank stops with the same one-line error naming
    the file, the dataset and the rows, and the job exits 1 instead of hanging."""
    corrupt = path("corrupt-chunk.h5")
    shutil.copyfile(ARGS.data, corrupt)
    with h5py.File(corrupt, "r") as f:
        images = f["/train/images"]
        rows = images.chunks[0]
        chunk = images.id.get_chunk_info_by_coord((3 * rows, 0))
    with open(corrupt, "r+b") as f:  # the zlib header: the chunk no longer inflates
        f.seek(chunk.byte_offset)
        f.write(b"\xff" * 8)
    line = expect_failure(SMALL + ["--data", corrupt, "--epochs", "1", "--shuffle", "shard",
                                   "--cache-bytes", "0"], "/train/images")
    check("corrupt-chunk.h5" in line and f"from row {3 * rows}" in line, f"message {line!r}")
    print("ok: a corrupt chunk met mid-epoch is one clear error on every rank")


def make_checkpoint(name, extra=()):
    directory = fresh(name)
    run(SMALL + ["--data", ARGS.data, "--epochs", "1", "--checkpoint-dir", directory] + list(extra))
    return os.path.join(directory, checkpoints(directory)[-1])


def case_corrupt_checkpoint():
    good = make_checkpoint("ckpt-good")
    # A flipped byte inside the parameter data: caught by the Fletcher-32 checksum.
    flipped = path("flipped.h5")
    shutil.copy(good, flipped)
    with h5py.File(good, "r") as f:
        offset = f["parameters"].id.get_chunk_info(0).byte_offset
    with open(flipped, "r+b") as f:
        f.seek(offset + 1000)
        b = f.read(1)
        f.seek(offset + 1000)
        f.write(bytes([b[0] ^ 0x40]))
    expect_failure(SMALL + ["--data", ARGS.data, "--epochs", "2", "--resume", flipped], "corrupt")
    # Truncated to half its size.
    half = path("half.h5")
    shutil.copy(good, half)
    os.truncate(half, os.path.getsize(good) // 2)
    expect_failure(SMALL + ["--data", ARGS.data, "--epochs", "2", "--resume", half], "half.h5")
    # Not HDF5 at all.
    text = path("text.h5")
    with open(text, "w") as f:
        f.write("not a checkpoint\n")
    expect_failure(SMALL + ["--data", ARGS.data, "--epochs", "2", "--resume", text], "not an HDF5 file")
    print("ok: flipped byte, truncation and a non-HDF5 file are clear errors")


def case_nonfinite():
    """A NaN in the data: every rank stops with one clear message naming the step; with
    --skip-nonfinite the run completes, skipping exactly the steps that meet the NaN."""
    # float32 images (the bundled uint8 ones scaled to [0, 1]) with ONE NaN. 1984 = 31 x 64
    # training rows: a whole number of global batches at 2 ranks x 32, so there is no
    # padding and the bad sample is in exactly one step per epoch.
    data = path("nan.h5")
    rows = {"train": 1984, "test": 500}
    with h5py.File(ARGS.data, "r") as src, h5py.File(data, "w") as dst:
        for split, n in rows.items():
            images = src[split]["images"][:n].astype(np.float32) / np.float32(255)
            if split == "train":
                images[1234, 300] = np.nan
            dst[f"{split}/images"] = images
            dst[f"{split}/labels"] = src[split]["labels"][:n]
    steps_per_epoch = rows["train"] // 64
    common = ["--model", "784-64-10", "--batch", "32", "--data", data, "--epochs", "2", "--progress", "off"]

    line = expect_failure(common + ["--quiet"], "non-finite")
    # The NaN reaches every logit of its sample through the first Dense layer (and ReLU
    # propagates NaN), so the loss of the rank holding it is NaN.
    m = re.fullmatch(r"ringdp-train: error: step (\d+): non-finite loss on rank ([01])", line)
    check(m is not None, f"unexpected message {line!r}")
    bad_step, bad_rank = int(m.group(1)), int(m.group(2))
    check(bad_step < steps_per_epoch, f"step {bad_step} is not in the first epoch")
    print(f"ok: NaN in the data stops the run: {line!r}")

    metrics = path("nan-metrics.csv")
    ckpt = fresh("nan-checkpoints")
    p = run(common + ["--skip-nonfinite", "--metrics", metrics, "--metrics-steps", "--checkpoint-dir", ckpt])
    warnings = [l for l in p.stdout.splitlines() if l.startswith("warning") and "non-finite" in l]
    check(len(warnings) == 2, f"expected one warning per epoch, got {warnings}")
    check(warnings[0].startswith(f"warning    step {bad_step}: non-finite loss on rank {bad_rank}: step skipped"),
          f"first warning {warnings[0]!r} does not name step {bad_step} and rank {bad_rank}")
    check(any(f"skipped     2 of {2 * steps_per_epoch} steps" in l for l in p.stdout.splitlines()),
          "the summary does not count 2 skipped steps")
    with open(metrics, newline="") as f:
        table = list(csv.DictReader(f))
    skipped_rows = [r for r in table if r["kind"] == "step" and r["skipped_steps"] == "1"]
    check(len(skipped_rows) == 2 and int(skipped_rows[0]["step"]) == bad_step + 1,
          f"metrics: skipped step rows {[(r['step'], r['skipped_steps']) for r in skipped_rows]}")
    for r in (r for r in table if r["kind"] == "epoch"):
        check(r["skipped_steps"] == "1", f"epoch {r['epoch']}: skipped_steps {r['skipped_steps']}")
        check(np.isfinite(float(r["train_loss"])) and np.isfinite(float(r["test_loss"])),
              f"epoch {r['epoch']}: non-finite losses in {r}")
        # The skipped step's 64 samples are not counted.
        check(int(r["samples"]) == rows["train"] - 64, f"epoch {r['epoch']}: {r['samples']} samples")
    params, state, _, steps = arena(os.path.join(ckpt, checkpoints(ckpt)[-1]))
    check(np.isfinite(params).all() and all(np.isfinite(v).all() for v in state.values()),
          "non-finite values in the final checkpoint")
    check(steps == 2 * steps_per_epoch - 2, f"optimizer made {steps} updates, expected {2 * steps_per_epoch - 2}")
    print(f"ok: --skip-nonfinite: 2 of {2 * steps_per_epoch} steps skipped, {steps} updates, finite parameters")


def case_model_mismatch():
    good = make_checkpoint("ckpt-mismatch")
    expect_failure(["--model", "784-32-10", "--batch", "32", "--quiet", "--data", ARGS.data, "--epochs", "2",
                    "--resume", good], "model spec mismatch")
    # A checkpoint of a 2-rank run resumed at 1 rank.
    expect_failure(SMALL + ["--data", ARGS.data, "--epochs", "2", "--resume", good], "rank count mismatch", ranks=1)
    print("ok: model and rank count mismatches are clear errors")


def case_io_mpiio():
    """--io mpiio (the file opened through MPI-IO, read on the loaders' threads while the
    gradient reducer's thread communicates) trains the same bits as --io serial."""
    common = SMALL + ["--data", ARGS.data, "--epochs", "2", "--shuffle", "shard", "--cache-bytes", "0"]
    serial = fresh("io-serial")
    a = run(common + ["--io", "serial", "--checkpoint-dir", serial])
    mpiio = fresh("io-mpiio")
    b = run(common + ["--io", "mpiio", "--checkpoint-dir", mpiio])
    a_params, a_state, a_attrs, _ = arena(os.path.join(serial, checkpoints(serial)[-1]))
    b_params, b_state, b_attrs, _ = arena(os.path.join(mpiio, checkpoints(mpiio)[-1]))
    check(int(a_attrs["epoch"]) == 2 and int(b_attrs["epoch"]) == 2, "final checkpoints not at epoch 2")
    check(same_bits(a_params, b_params),
          f"parameters differ: max |diff| {np.max(np.abs(a_params - b_params))}")
    check(all(same_bits(a_state[k], b_state[k]) for k in a_state), "optimizer state differs")
    # The evaluation of the test split (2,000 samples) went through the driver too.
    evaluation = [[l for l in r.stdout.splitlines() if "2,000 samples" in l] for r in (a, b)]
    check(len(evaluation[0]) == 1 and evaluation[0] == evaluation[1],
          f"test-split evaluations differ or are missing: {evaluation}")
    print(f"ok: --io mpiio == --io serial: {a_params.size} parameters bit-identical after 2 epochs")


CASES = {
    "resume": case_resume,
    "outputs": case_outputs,
    "bad_flags": case_bad_flags,
    "missing_data": case_missing_data,
    "corrupt_checkpoint": case_corrupt_checkpoint,
    "model_mismatch": case_model_mismatch,
    "nonfinite": case_nonfinite,
    "io_mpiio": case_io_mpiio,
    "corrupt_data": case_corrupt_data,
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--exe", required=True)
    parser.add_argument("--mpiexec", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--workdir", required=True)
    ARGS = parser.parse_args()
    ARGS.workdir = os.path.join(ARGS.workdir, ARGS.case)
    os.makedirs(ARGS.workdir, exist_ok=True)
    try:
        CASES[ARGS.case]()
    except Fail as e:
        print(f"FAILED: {e}")
        sys.exit(1)
    print("PASSED")
