#!/usr/bin/python3
"""The shared-memory criteria of a ringdp-bench sweep (bench/shm_sweep.sh).

usage: bench/shm_report.py DIR

Reads DIR/allreduce-np2.csv (ordinary buffers, every algorithm) and
DIR/allreduce-np2-shared.csv (--shared: SharedBuffer memory), both with the memory floor
measured in the same run (floor_us), and prints, per size, shm's time against the ring,
MPI_Allreduce and the floor, then the criteria:
  - shm on SharedBuffer at 64 MiB and 256 MiB: >= 1.5x the ring, >= 60% of the floor's speed;
  - shm on ordinary buffers from 4 MiB: >= 1.2x the ring;
  - 8 B to 64 KiB: shm (or auto) no slower than MPI_Allreduce at each size;
  - auto within 10% of the fastest algorithm at every size (ordinary buffers);
  - training (DIR/train-{ring,shm}-r*.csv, when there): shm's exposed communication per step
    at most half the ring's, and its samples/s >= 0.95x the lockstep ceiling.
Writes DIR/shm-criteria.txt and DIR/shm-vs-floor.png.
"""
import csv
import glob
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    table = {}
    for r in csv.DictReader(open(path)):
        table.setdefault(int(r["bytes"]), {})[r["algo"]] = r
    return table


def t(row):
    return float(row["time_us"])


def label(b):
    for unit, f in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= f and b % f == 0:
            return f"{b // f} {unit}"
    return f"{b} B"


def main():
    out = sys.argv[1]
    plain = load(os.path.join(out, "allreduce-np2.csv"))
    shared_path = os.path.join(out, "allreduce-np2-shared.csv")
    shared = load(shared_path) if os.path.exists(shared_path) else {}
    lines = []
    say = lines.append
    say(f"{'size':>9} {'ring us':>11} {'mpi us':>11} {'shm us':>11} {'shm/shared':>11} "
        f"{'floor us':>11} {'shm vs ring':>11} {'shared vs ring':>14} {'shared % floor':>14}")
    criteria = []
    for size in sorted(plain):
        row = plain[size]
        ring, mpi, shm = row.get("ring"), row.get("mpi"), row.get("shm")
        sh = shared.get(size, {})
        shm_shared, ring_shared = sh.get("shm"), sh.get("ring")
        floor = float(sh["shm"]["floor_us"]) if shm_shared and sh["shm"].get("floor_us") else None
        cells = [label(size)] + [f"{t(x):.2f}" if x else "-" for x in (ring, mpi, shm, shm_shared)]
        cells.append(f"{floor:.2f}" if floor else "-")
        cells.append(f"{t(ring) / t(shm):.2f}" if ring and shm else "-")
        cells.append(f"{t(ring_shared) / t(shm_shared):.2f}" if ring_shared and shm_shared else "-")
        cells.append(f"{100 * floor / t(shm_shared):.0f}%" if floor and shm_shared else "-")
        say(f"{cells[0]:>9} {cells[1]:>11} {cells[2]:>11} {cells[3]:>11} {cells[4]:>11} "
            f"{cells[5]:>11} {cells[6]:>11} {cells[7]:>14} {cells[8]:>14}")
        if size in (64 << 20, 256 << 20) and ring_shared and shm_shared:
            speedup = t(ring_shared) / t(shm_shared)
            criteria.append((f"{label(size)} SharedBuffer: shm >= 1.5x ring", speedup, speedup >= 1.5))
            if floor:
                share = floor / t(shm_shared)
                criteria.append((f"{label(size)} SharedBuffer: shm >= 60% of the floor", share,
                                 share >= 0.6))
        if size >= 4 << 20 and ring and shm:
            criteria.append((f"{label(size)} ordinary: shm >= 1.2x ring", t(ring) / t(shm),
                             t(ring) / t(shm) >= 1.2))
        if size <= 64 << 10 and mpi:
            best = min(t(x) for x in (shm, row.get("auto")) if x)
            criteria.append((f"{label(size)}: min(shm, auto) no slower than mpi", t(mpi) / best,
                             best <= t(mpi)))
        if row.get("auto"):
            fastest = min(t(x) for a, x in row.items() if a != "auto")
            ratio = t(row["auto"]) / fastest
            criteria.append((f"{label(size)}: auto within 10% of the fastest "
                             f"(ran {row['auto']['runs']})", ratio, ratio <= 1.10))
    training(out, say, criteria)
    say("")
    say(f"criteria ({sum(m for _, _, m in criteria)} of {len(criteria)} met):")
    for what, value, met in criteria:
        say(f"  {'met' if met else 'NOT met':>7}  {what}: {value:.2f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    open(os.path.join(out, "shm-criteria.txt"), "w").write(text)
    plot(out, plain, shared)


def training(out, say, criteria):
    """bench-train-throughput at 2 ranks, ring and shm runs alternated (train-<algo>-r<k>.csv):
    exposed communication per step (overlap variant) and samples/s against lockstep."""
    runs = {}
    for algo in ("ring", "shm"):
        for path in sorted(glob.glob(os.path.join(out, f"train-{algo}-r*.csv"))):
            for r in csv.DictReader(open(path)):
                runs.setdefault(algo, {}).setdefault(r["variant"], []).append(r)
    if "ring" not in runs or "shm" not in runs:
        return
    med = statistics.median

    def value(algo, variant, column):
        rows = runs[algo].get(variant, [])
        return med(float(r[column]) for r in rows) if rows else None

    say("")
    say("training (bench-train-throughput, 2 ranks, medians over runs):")
    for algo in ("ring", "shm"):
        say(f"  {algo}: overlap {value(algo, 'overlap', 'samples_per_s'):.0f} samples/s, exposed "
            f"comm {value(algo, 'overlap', 'exposed_comm_ms'):.3f} ms/step; lockstep "
            f"{value(algo, 'lockstep', 'samples_per_s') or float('nan'):.0f} samples/s")
    ring_comm = value("ring", "overlap", "exposed_comm_ms")
    shm_comm = value("shm", "overlap", "exposed_comm_ms")
    criteria.append(("training: shm's exposed comm / ring's <= 0.5", shm_comm / ring_comm,
                     shm_comm <= 0.5 * ring_comm))
    lockstep = value("shm", "lockstep", "samples_per_s")
    if lockstep:
        ratio = value("shm", "overlap", "samples_per_s") / lockstep
        criteria.append(("training: shm samples/s >= 0.95x lockstep", ratio, ratio >= 0.95))


def plot(out, plain, shared):
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for table, suffix, style in ((plain, "", "-"), (shared, " (SharedBuffer)", "--")):
        for algo, color in (("ring", "tab:red"), ("mpi", "black"), ("shm", "tab:purple")):
            xs = [s for s in sorted(table) if algo in table[s]]
            if not xs:
                continue
            ax.plot(xs, [float(table[s][algo]["busbw_GBps"]) for s in xs], style, color=color,
                    marker=".", label=algo + suffix)
        floors = [(s, float(r["floor_us"])) for s in sorted(table) for a, r in table[s].items()
                  if a == "shm" and r.get("floor_us") and float(r["floor_us"]) > 0]
        if floors and suffix:
            ax.plot([s for s, _ in floors], [s / f / 1e3 for s, f in floors], ":", color="gray",
                    label="memory floor (busbw)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("message size (bytes)")
    ax.set_ylabel("bus bandwidth (GB/s), 2 ranks")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "shm-vs-floor.png"), dpi=80)


if __name__ == "__main__":
    main()
