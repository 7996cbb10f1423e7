#!/usr/bin/python3
"""Runs ringdp-bench under mpiexec and checks what it promises, from its CSV and JSON files.

The expectations are derived here, independently of the benchmark's code: the list of
message sizes from --min-bytes/--max-bytes/--factor and the element size, one row per
(size, algorithm) in --algos order, bandwidths recomputed from the times, vs_mpi recomputed
from the MPI row, and wrong == 0 (or, with --expect-wrong ALGO, exactly the one element the
benchmark's test hook corrupts per size, and a failing exit status).

usage: check_bench_csv.py --mpiexec MPIEXEC --np N --bench EXE --workdir DIR
                          [--expect-wrong ALGO] [--check-tune [--segment-env BYTES]]
                          -- [ringdp-bench flags...]
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys

REQUIRED = ["bytes", "count", "type", "op", "algo", "time_us", "algbw_GBps", "busbw_GBps",
            "vs_mpi", "wrong"]
ELEMENT_BYTES = {"float": 4, "double": 8, "int32": 4, "int64": 8}
UNITS = {"": 1, "B": 1, "K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20,
         "G": 1 << 30, "GIB": 1 << 30}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def parse_bytes(text):
    digits = len(text) - len(text.lstrip("0123456789"))
    return int(text[:digits]) * UNITS[text[digits:].upper()]


def flag(args, name, default):
    return args[args.index(name) + 1] if name in args else default


def expected_sizes(min_bytes, max_bytes, factor, element):
    counts = []
    size = min_bytes
    while size <= max_bytes:
        count = size // element
        if count > 0 and (not counts or counts[-1] != count):
            counts.append(count)
        size *= factor
    return [c * element for c in counts]


def close(a, b, rel, absolute):
    return abs(a - b) <= absolute + rel * abs(b)


def check_tune(path, rows, n, segment):
    """Each rule of the tuning file names, at the size it starts, an algorithm within 5% of
    the fastest of ring, rd, mpi, shm and hier (those measured) in the CSV; the rules start at 0 and grow; one segment
    rule, for n, with the segment the run used. Returns the size rules."""
    if not check(os.path.exists(path), f"no tuning file written at {path}"):
        return []
    rules, segments = [], []
    with open(path) as f:
        for line in f:
            fields = line.split("#")[0].split()
            if not fields:
                continue
            if len(fields) == 4 and fields[0] == "ranks" and fields[2] == "segment":
                segments.append((int(fields[1]), int(fields[3])))
                continue
            check(len(fields) == 5 and fields[0] == "ranks" and fields[2] == "bytes",
                  f"tuning file line {line!r} is neither 'ranks N bytes B ALGO' nor "
                  "'ranks N segment B'")
            rules.append((int(fields[1]), int(fields[3]), fields[4]))
    check(segments == [(n, segment)], f"segment rules {segments}, expected {[(n, segment)]}")
    check(rules and all(r[0] == n for r in rules), f"tuning rules {rules} not all for {n} ranks")
    check(rules and rules[0][1] == 0, "the first tuning rule does not start at 0 bytes")
    check([r[1] for r in rules] == sorted({r[1] for r in rules}), "tuning rules not increasing")
    times = {(int(r["bytes"]), r["algo"]): float(r["time_us"]) for r in rows}
    sizes = sorted({int(r["bytes"]) for r in rows})
    # The candidates --tune chooses from (ps exists to be beaten, auto is what it tunes).
    measured = {a for (_, a) in times} & {"ring", "rd", "mpi", "shm", "hier"}
    for _, start, algo in rules:
        check(algo in measured, f"tuning rule chooses {algo}, not one of {sorted(measured)}")
        size = start if start > 0 else sizes[0]
        best = min(times[(size, a)] for a in measured)
        check(times.get((size, algo), math.inf) <= best * 1.05 + 1e-9,
              f"tuning rule at {start} B chooses {algo}, not within 5% of the fastest")
    return rules


def check_auto_follows(opts, bench_args, tune_path, rules, sizes, segment):
    """The file --tune wrote, read back by the library through RINGDP_TUNING: auto must
    run, at every size, the algorithm of the last rule starting at or below it, and the ring
    with the segment the tuning run used. The run gets neither --segment nor
    RINGDP_SEGMENT_BYTES, so that the segment can only come from the file."""
    if not rules:
        return
    csv_path = os.path.join(opts.workdir, f"auto-np{opts.np}.csv")
    json_path = os.path.join(opts.workdir, f"auto-np{opts.np}.json")
    args = [a for a in bench_args]
    for option in ("--algos", "--segment"):
        if option in args:
            i = args.index(option)
            del args[i:i + 2]
    command = [opts.mpiexec, "-n", str(opts.np), "--oversubscribe", "-x", "RINGDP_TUNING",
               opts.bench, *args, "--algos", "auto", "--csv", csv_path, "--json", json_path]
    print(" ".join(command), flush=True)
    env = {k: v for k, v in os.environ.items() if k != "RINGDP_SEGMENT_BYTES"}
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**env, "RINGDP_TUNING": tune_path})
    print(run.stdout)
    if not check(run.returncode == 0 and os.path.exists(csv_path) and os.path.exists(json_path),
                 f"ringdp-bench --algos auto with RINGDP_TUNING exited {run.returncode}"):
        return
    with open(csv_path, newline="") as f:
        ran = {int(r["bytes"]): r["runs"] for r in csv.DictReader(f)}
    for size in sizes:
        want = [algo for _, start, algo in rules if start <= size][-1]
        check(ran.get(size) == want,
              f"with RINGDP_TUNING, auto ran {ran.get(size)} at {size} B; the file says {want}")
    with open(json_path) as f:
        used = json.load(f)["header"]["ring_segment_bytes"]
    check(used == segment,
          f"with RINGDP_TUNING, the ring ran with {used} B segments; the tuning run used {segment}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mpiexec", required=True)
    parser.add_argument("--np", type=int, required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--expect-wrong")
    parser.add_argument("--check-tune", action="store_true",
                        help="also pass --tune FILE, check the rules it writes, and that "
                             "auto follows them when the file is read through RINGDP_TUNING")
    parser.add_argument("--segment-env",
                        help="with --check-tune: run the tuning run (only) with "
                             "RINGDP_SEGMENT_BYTES set to this, e.g. 8K")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    bench_args = [a for a in opts.bench_args if a != "--"]

    os.makedirs(opts.workdir, exist_ok=True)
    tag = f"np{opts.np}" + (f"-wrong-{opts.expect_wrong}" if opts.expect_wrong else "")
    csv_path = os.path.join(opts.workdir, f"bench-{tag}.csv")
    json_path = os.path.join(opts.workdir, f"bench-{tag}.json")
    for path in (csv_path, json_path):
        if os.path.exists(path):
            os.remove(path)
    extra = ["--corrupt-for-testing", opts.expect_wrong] if opts.expect_wrong else []
    tune_path = os.path.join(opts.workdir, f"tune-{tag}.txt")
    if opts.check_tune:
        if os.path.exists(tune_path):
            os.remove(tune_path)
        extra += [f"--tune={tune_path}"]  # one word: mpirun has a --tune of its own
    env = dict(os.environ)
    launcher = [opts.mpiexec, "-n", str(opts.np), "--oversubscribe"]
    if opts.segment_env:
        env["RINGDP_SEGMENT_BYTES"] = str(parse_bytes(opts.segment_env))
        launcher += ["-x", "RINGDP_SEGMENT_BYTES"]
    command = [*launcher, opts.bench, *bench_args, "--csv", csv_path, "--json", json_path,
               *extra]
    print(" ".join(command), flush=True)
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env)
    print(run.stdout)
    if opts.expect_wrong:
        check(run.returncode != 0, "ringdp-bench exited 0 although results were wrong")
        check("FAILED" in run.stdout, "the table footer does not report the failure")
    else:
        check(run.returncode == 0, f"ringdp-bench exited with {run.returncode}")
    if not check(os.path.exists(csv_path), f"no CSV written at {csv_path}"):
        return
    leftovers = [f for f in os.listdir(opts.workdir) if ".tmp" in f]
    check(not leftovers, f"temporary files left behind: {leftovers}")

    dtype = flag(bench_args, "--dtype", "float")
    op = flag(bench_args, "--op", "sum")
    sizes = expected_sizes(parse_bytes(flag(bench_args, "--min-bytes", "8")),
                           parse_bytes(flag(bench_args, "--max-bytes", "256M")),
                           int(flag(bench_args, "--factor", "2")), ELEMENT_BYTES[dtype])
    n = opts.np
    # The default list: shm when every rank shares one node (as here, unless
    # RINGDP_NODE_SIZE cuts the ranks into several "nodes"), hier when they span several.
    node_size = int(os.environ.get("RINGDP_NODE_SIZE", "0") or 0)
    node_local = "hier" if 0 < node_size < n else "shm"
    algos = flag(bench_args, "--algos", f"ring,rd,mpi,ps,{node_local},auto").split(",")

    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    check(header[:len(REQUIRED)] == REQUIRED,
          f"CSV columns {header} do not start with {REQUIRED}")
    check(len(rows) == len(sizes) * len(algos),
          f"{len(rows)} rows, expected {len(sizes)} sizes x {len(algos)} algorithms")
    expected_keys = [(s, a) for s in sizes for a in algos]
    actual_keys = [(int(r["bytes"]), r["algo"]) for r in rows]
    check(actual_keys == expected_keys,
          f"rows (bytes, algo) {actual_keys} differ from the expected {expected_keys}")

    mpi_time = {int(r["bytes"]): float(r["time_us"]) for r in rows if r["algo"] == "mpi"}
    for r in rows:
        where = f"row bytes={r['bytes']} algo={r['algo']}"
        size, count, t = int(r["bytes"]), int(r["count"]), float(r["time_us"])
        check(count * ELEMENT_BYTES[dtype] == size, f"{where}: count x element != bytes")
        check(r["type"] == dtype and r["op"] == op, f"{where}: type/op {r['type']}/{r['op']}")
        check(int(r["ranks"]) == n, f"{where}: ranks column {r['ranks']} != {n}")
        check(t > 0 and float(r["min_us"]) <= t <= float(r["max_us"]),
              f"{where}: not min <= median <= max, or time not positive")
        # The CSV rounds times to 1e-3 us: ratios computed from them carry that relative error.
        rel = 1e-3 + 5e-4 / t + (5e-4 / mpi_time[size] if size in mpi_time else 0)
        algbw = size / t / 1e3  # bytes per microsecond / 1e3 = GB/s (1e9 B/s)
        check(close(float(r["algbw_GBps"]), algbw, rel, 2e-4),
              f"{where}: algbw {r['algbw_GBps']} != bytes/time = {algbw:.4f}")
        check(close(float(r["busbw_GBps"]), algbw * 2 * (n - 1) / n, rel, 2e-4),
              f"{where}: busbw {r['busbw_GBps']} != algbw x 2(n-1)/n")
        if size in mpi_time:
            check(close(float(r["vs_mpi"]), mpi_time[size] / t, rel, 2e-4),
                  f"{where}: vs_mpi {r['vs_mpi']} != mpi time / time")
        wrong = int(r["wrong"])
        if opts.expect_wrong == r["algo"]:
            check(wrong == 1, f"{where}: wrong = {wrong}, expected the 1 corrupted element")
        else:
            check(wrong == 0, f"{where}: wrong = {wrong}")

    if check(os.path.exists(json_path), f"no JSON written at {json_path}"):
        with open(json_path) as f:
            doc = json.load(f)
        head = doc["header"]
        check(head["ranks"] == n, f"JSON ranks {head['ranks']} != {n}")
        check(sum(h["ranks"] for h in head["hosts"]) == n, "JSON hosts do not add up to the ranks")
        for key in ("mpi_library", "ringdp_version", "git_hash", "cpu_model", "date_utc"):
            check(isinstance(head.get(key), str) and head[key], f"JSON header lacks {key}")
        check(len(doc["rows"]) == len(rows), "JSON and CSV row counts differ")
        check(doc["summary"]["wrong_total"] == sum(int(r["wrong"]) for r in rows),
              "JSON wrong_total differs from the CSV")
        if "mpi" in algos:
            means = doc["summary"]["geomean_vs_mpi"]
            large = [float(r["vs_mpi"]) for r in rows
                     if r["algo"] == algos[0] and int(r["bytes"]) <= 64 * 1024]
            if large:
                expected = math.exp(sum(math.log(v) for v in large) / len(large))
                check(close(means[algos[0]]["le_64KiB"], expected, 5e-3, 1e-3),
                      f"geomean vs_mpi <= 64 KiB of {algos[0]} is not the CSV's geometric mean")

    if opts.check_tune:
        # The segment the tuning run used: --segment, else RINGDP_SEGMENT_BYTES, both known
        # here; with neither, the library's default, taken from the run's own JSON header.
        segment = parse_bytes(flag(bench_args, "--segment", "0"))
        if not segment and opts.segment_env:
            segment = parse_bytes(opts.segment_env)
        if not segment and os.path.exists(json_path):
            with open(json_path) as f:
                segment = json.load(f)["header"]["ring_segment_bytes"]
        rules = check_tune(tune_path, rows, n, segment)
        check_auto_follows(opts, bench_args, tune_path, rules, sizes, segment)

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"OK: {len(rows)} rows ({len(sizes)} sizes x {len(algos)} algorithms) at {n} ranks")


if __name__ == "__main__":
    main()
