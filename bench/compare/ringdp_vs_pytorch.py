#!/usr/bin/python3
"""ringdp against PyTorch, and ranks against threads, in one interleaved session.

For every round and every batch size it runs, one after the other (so that the load of a
shared machine falls on all of them alike):

  ringdp-1x1   mpirun -np 1 bench-train-throughput --threads 1
  pytorch-1    PyTorch, 1 process, 1 thread (pytorch_mlp.py), pinned to the first CPU
  ringdp-2x1   mpirun -np 2 bench-train-throughput --threads 1
  ddp-2        PyTorch DistributedDataParallel (gloo), 2 processes of 1 thread, pinned
  ringdp-1x2   mpirun -np 1 --map-by socket:PE=2 bench-train-throughput --threads 2

all training the same MLP (784-512-256-10 by default) with SGD (lr 0.01, momentum 0.9) on
synthetic in-memory data, float32, --batch samples per rank per step. It prints one table of
samples/s (medians over rounds) and of the ratios the project tracks (per round, then the
median), and writes every run and the ratios to CSV.

PyTorch is optional: without it (or without its gloo backend) the PyTorch runs are skipped
and said so. Install it with `apt-get install python3-torch libopenblas0-pthread`: without
libopenblas0-pthread Debian's PyTorch runs the reference BLAS, about 10x slower.

usage: ringdp_vs_pytorch.py [--build BUILD_DIR] [--batch 64 256] [--rounds 3] [--steps 300]
                            [--csv compare.csv]
"""
import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
INSTALL_HINT = ("apt-get install python3-torch libopenblas0-pthread (without "
                "libopenblas0-pthread PyTorch runs the reference BLAS, about 10x slower)")

# (name, system, ranks, threads)
VARIANTS = [
    ("ringdp-1x1", "ringdp", 1, 1),
    ("pytorch-1", "pytorch", 1, 1),
    ("ringdp-2x1", "ringdp", 2, 1),
    ("ddp-2", "pytorch", 2, 1),
    ("ringdp-1x2", "ringdp", 1, 2),
]
# (label, numerator, denominator, {batch: target} or None)
RATIOS = [
    ("1 rank vs PyTorch 1 process", "ringdp-1x1", "pytorch-1", 1.3),
    ("2 ranks vs PyTorch DDP 2 ranks", "ringdp-2x1", "ddp-2", 2.0),
    ("1 rank x 2 threads vs 2 ranks x 1 thread", "ringdp-1x2", "ringdp-2x1", None),
    ("1 rank x 2 threads vs 1 rank x 1 thread", "ringdp-1x2", "ringdp-1x1", {256: 1.6}),
]
RUN_FIELDS = ["round", "batch", "variant", "system", "ranks", "threads", "samples_per_s",
              "step_ms", "forward_ms", "backward_ms", "exposed_comm_ms", "optimizer_ms"]
RATIO_FIELDS = ["batch", "comparison", "numerator", "denominator", "numerator_samples_per_s",
                "denominator_samples_per_s", "ratio", "target"]


def mpi_environment():
    """Open MPI's settings for one machine, as scripts/env.sh sets them."""
    env = dict(os.environ)
    if os.geteuid() == 0:
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ringdp(args, ranks, threads, batch, spin_us=None):
    """One bench-train-throughput run (overlap variant); returns its CSV row as floats.
    spin_us: the compute threads' spin (--spin-us), None for the trainer's choice."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.csv")
        mapping = ["--map-by", f"socket:PE={threads}"] if threads > 1 else []
        cmd = [args.mpirun, "-np", str(ranks), *mapping, args.bench, "--model", args.model,
               "--batch", str(batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--repeats", "1", "--overlap", "on", "--threads", str(threads), "--csv", out]
        if spin_us is not None:
            cmd += ["--spin-us", str(spin_us)]
        proc = subprocess.run(cmd, env=mpi_environment(), capture_output=True, text=True,
                              timeout=args.timeout)
        if proc.returncode != 0 or not os.path.exists(out):
            sys.exit(f"ringdp_vs_pytorch: failed ({proc.returncode}): {' '.join(cmd)}\n"
                     f"{proc.stdout}{proc.stderr}")
        with open(out) as f:
            row = next(csv.DictReader(f))
        return {"samples_per_s": float(row["samples_per_s"]), "step_ms": float(row["step_ms"]),
                "forward_ms": float(row["forward_ms"]), "backward_ms": float(row["backward_ms"]),
                "exposed_comm_ms": float(row["exposed_comm_ms"]),
                "optimizer_ms": float(row["optimizer_ms"])}


def run_pytorch(args, ranks, batch):
    """PyTorch alone or under DDP: one process per rank, each pinned to its CPU."""
    port = str(free_port())
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo")  # one machine: gloo over loopback
    procs = []
    for rank in range(ranks):
        cmd = [args.python, os.path.join(HERE, "pytorch_mlp.py"), "--model", args.model,
               "--batch", str(batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--rank", str(rank), "--ranks", str(ranks), "--port", port, "--cpu",
               str(args.cpu_list[rank % len(args.cpu_list)])]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = []
    straggled = False
    try:
        outputs.append(procs[0].communicate(timeout=args.timeout))
        # Rank 0 reports after an all-reduce of every rank's time, so once it has, the
        # others have finished their steps too; one that then fails to exit (gloo at
        # shutdown) is stopped rather than waited for.
        for proc in procs[1:]:
            try:
                outputs.append(proc.communicate(timeout=30 if procs[0].returncode == 0
                                                else args.timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate())
                straggled = True
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    lines = [l for l in outputs[0][0].splitlines() if l.startswith("{")]
    if straggled:
        print("# note: a PyTorch rank did not exit after rank 0 reported; stopped", flush=True)
    failed = procs[0].returncode != 0 or (not straggled and
                                          any(p.returncode != 0 for p in procs[1:]))
    if failed or not lines:
        sys.exit(f"ringdp_vs_pytorch: PyTorch with {ranks} rank(s) failed:\n" +
                 "".join(out + err for out, err in outputs))
    result = json.loads(lines[-1])
    args.pytorch_info = f"PyTorch {result['torch']}, BLAS {result['blas']}"
    return {"samples_per_s": result["samples_per_s"], "step_ms": result["step_ms"]}


def pytorch_available(python):
    """(True, version) or (False, why)."""
    probe = ("import torch, torch.distributed as d; "
             "print(torch.__version__, d.is_available() and d.is_gloo_available())")
    try:
        proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except OSError as e:
        return False, str(e)
    if proc.returncode != 0:
        return False, (proc.stderr.strip().splitlines() or ["import torch failed"])[-1]
    version, gloo = proc.stdout.split()
    if gloo != "True":
        return False, f"PyTorch {version} has no gloo backend (DDP needs it)"
    return True, version


def write_csv(path, fields, rows):
    """Written to a temporary name and renamed: an interrupted run leaves no partial file."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def summarise(args, runs):
    """Medians of every variant, and per-round ratios' medians; prints the table."""
    ratio_rows = []
    print(f"\n{'batch':>5}  {'variant / comparison':<44} {'samples/s':>10} {'other':>10} "
          f"{'ratio':>7} {'target':>7}")
    for batch in args.batch:
        median = {}
        for name in args.variant_names:
            rates = [r["samples_per_s"] for r in runs if r["batch"] == batch and
                     r["variant"] == name]
            if rates:
                median[name] = statistics.median(rates)
                print(f"{batch:>5}  {name:<44} {median[name]:>10.0f}")
        for label, num, den, target in RATIOS:
            per_round = []
            for rnd in range(args.rounds):
                a = [r for r in runs if (r["batch"], r["variant"], r["round"]) == (batch, num, rnd)]
                b = [r for r in runs if (r["batch"], r["variant"], r["round"]) == (batch, den, rnd)]
                if a and b:
                    per_round.append(a[0]["samples_per_s"] / b[0]["samples_per_s"])
            if isinstance(target, dict):
                target = target.get(batch)
            goal = f">={target:.1f}x" if target else "-"
            if not per_round:
                print(f"{batch:>5}  {label:<44} {'skipped':>10}")
                continue
            ratio = statistics.median(per_round)
            print(f"{batch:>5}  {label:<44} {median[num]:>10.0f} {median[den]:>10.0f} "
                  f"{ratio:>6.2f}x {goal:>7}")
            ratio_rows.append({"batch": batch, "comparison": label, "numerator": num,
                               "denominator": den, "numerator_samples_per_s": f"{median[num]:.1f}",
                               "denominator_samples_per_s": f"{median[den]:.1f}",
                               "ratio": f"{ratio:.4f}", "target": target or ""})
    return ratio_rows


def main():
    parser = argparse.ArgumentParser(
        description="ringdp against PyTorch, and ranks against threads, interleaved.")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="ringdp build dir")
    parser.add_argument("--model", default="784-512-256-10")
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256],
                        help="samples per rank per step")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--csv", default="compare.csv",
                        help="every run; the ratios go to <stem>-ratios.csv")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter with PyTorch")
    parser.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    parser.add_argument("--skip-pytorch", action="store_true")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--spin-us", type=int, default=None,
                        help="also run 1 rank x 2 threads with the compute threads spinning "
                             "this long (us) before they block (variant ringdp-1x2-spin), "
                             "interleaved with the trainer's own choice")
    args = parser.parse_args()
    args.bench = os.path.join(args.build, "bench", "train_throughput", "bench-train-throughput")
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"ringdp_vs_pytorch: {args.bench} not found: build ringdp first "
                 f"(scripts/build.sh) or pass --build")
    # PyTorch processes are pinned to the CPUs mpirun binds ranks 0 and 1 to by default
    # (the first two of this process's CPUs), so both systems run on the same cores.
    args.cpu_list = sorted(os.sched_getaffinity(0))
    variants = list(VARIANTS)
    if args.spin_us is not None:
        variants.append(("ringdp-1x2-spin", "ringdp", 1, 2))
        RATIOS.append(("1 rank x 2 threads, spin vs 1 rank x 1 thread", "ringdp-1x2-spin",
                       "ringdp-1x1", {256: 1.6}))
    if len(args.cpu_list) < 2:
        print("ringdp_vs_pytorch: fewer than 2 CPUs: 2-rank and 2-thread runs skipped")
        variants = [v for v in variants if v[2] * v[3] == 1]
    have_torch, torch_why = (False, "--skip-pytorch") if args.skip_pytorch else \
        pytorch_available(args.python)
    if not have_torch:
        print(f"ringdp_vs_pytorch: PyTorch runs skipped ({torch_why}); to compare with PyTorch: "
              f"{INSTALL_HINT}")
        variants = [v for v in variants if v[1] != "pytorch"]
    args.pytorch_info = ""
    args.variant_names = [v[0] for v in variants]

    print(f"# ringdp vs PyTorch: model {args.model}, batch {args.batch} per rank, SGD momentum "
          f"0.9, float32, {args.steps} timed steps after {args.warmup}, {args.rounds} rounds "
          f"interleaved; CPUs {args.cpu_list}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'round':>5} {'batch':>5} {'variant':<15} {'samples/s':>10} {'step_ms':>8}")
    runs = []
    for rnd in range(args.rounds):
        for batch in args.batch:
            for name, system, ranks, threads in variants:
                if system == "ringdp":
                    spin = args.spin_us if name == "ringdp-1x2-spin" else None
                    result = run_ringdp(args, ranks, threads, batch, spin)
                else:
                    result = run_pytorch(args, ranks, batch)
                runs.append({"round": rnd, "batch": batch, "variant": name, "system": system,
                             "ranks": ranks, "threads": threads, **result})
                for key, value in result.items():
                    runs[-1][key] = round(value, 4)
                print(f"{rnd:>5} {batch:>5} {name:<15} {result['samples_per_s']:>10.0f} "
                      f"{result['step_ms']:>8.3f}", flush=True)
    if args.pytorch_info:
        print(f"# {args.pytorch_info}")
        if "openblas" not in args.pytorch_info.lower():
            print(f"# warning: PyTorch does not run OpenBLAS here; {INSTALL_HINT}")
    ratio_rows = summarise(args, runs)
    write_csv(args.csv, RUN_FIELDS, runs)
    stem, ext = os.path.splitext(args.csv)
    write_csv(f"{stem}-ratios{ext or '.csv'}", RATIO_FIELDS, ratio_rows)
    print(f"# runs: {args.csv}; ratios: {stem}-ratios{ext or '.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
