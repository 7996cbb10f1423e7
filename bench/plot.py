#!/usr/bin/python3
"""Plots of ringdp-bench results: PNGs next to the CSVs of one results directory.

usage: bench/plot.py RESULTS_DIR [--sizes 4K,16M] [--glob 'allreduce-np*.csv']

For every allreduce-npN*.csv (or the CSVs --glob names) with N > 1: busbw-npN.png, bus
bandwidth against message size (log-log, one line per algorithm) above vs_mpi against size.
Over all rank counts:
time-vs-ranks-<size>.png, the median time of each algorithm against the rank count at a
fixed message size (oversubscribed rank counts shaded). A 1-rank run moves no data (busbw
is 0 by definition), so it is in neither plot; its table is still in the CSV.
"""
import argparse
import csv
import glob
import json
import os
import re

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"ring": ("tab:red", "o"), "rd": ("tab:blue", "s"), "mpi": ("black", "^"),
         "ps": ("tab:gray", "v"), "shm": ("tab:purple", "D"), "hier": ("tab:brown", "P"),
         "auto": ("tab:green", "x")}
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)(?:I?B)?", text.strip().upper())
    if not m:
        raise SystemExit(f"plot.py: bad size {text!r} (e.g. 4K, 16M)")
    return int(m.group(1)) * UNITS[m.group(2)]


def size_label(b):
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= factor and b % factor == 0:
            return f"{b // factor} {unit}"
    return f"{b} B"


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    meta = {}
    json_path = path[:-4] + ".json"
    if os.path.exists(json_path):
        with open(json_path) as f:
            meta = json.load(f)["header"]
    ranks = int(rows[0]["ranks"]) if rows else 0
    over = meta.get("oversubscribed", "oversubscribed" in os.path.basename(path))
    return ranks, over, rows, meta


def by_algo(rows):
    algos = {}
    for r in rows:
        algos.setdefault(r["algo"], []).append(r)
    return algos


def plot_busbw(path, ranks, over, rows, meta):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    for algo, rs in by_algo(rows).items():
        color, marker = STYLE.get(algo, (None, "."))
        x = [int(r["bytes"]) for r in rs]
        top.plot(x, [float(r["busbw_GBps"]) for r in rs], label=algo, color=color,
                 marker=marker, markersize=4, linewidth=1.2)
        if all(r["vs_mpi"] for r in rs):
            bottom.plot(x, [float(r["vs_mpi"]) for r in rs], color=color, marker=marker,
                        markersize=4, linewidth=1.2)
    # The memory floor measured in the same run (every rank reading and writing its buffer
    # in place, all at once), as the bus bandwidth an allreduce of that time would have.
    floor = {}
    for r in rows:
        if r.get("floor_us") and float(r["floor_us"]) > 0:
            floor[int(r["bytes"])] = float(r["floor_us"])
    if floor and ranks > 1:
        xs = sorted(floor)
        top.plot(xs, [b / floor[b] / 1e3 * 2 * (ranks - 1) / ranks for b in xs], ":",
                 color="gray", label="memory floor")
    top.set_xscale("log", base=2)
    top.set_yscale("log")
    top.set_ylabel("bus bandwidth (GB/s)")
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="upper left")
    title = f"allreduce {rows[0]['type']} {rows[0]['op']}, {ranks} ranks"
    if over:
        title += " (OVERSUBSCRIBED)"
    if meta:
        title += f"\n{meta.get('cpu_model', '')}, {meta.get('mpi_library', '').split(',')[0]}"
    top.set_title(title, fontsize=10)
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_yscale("log")
    bottom.set_ylabel("vs MPI_Allreduce")
    bottom.set_xlabel("message size")
    ticks = [1 << k for k in range(0, 41, 3)
             if min(int(r["bytes"]) for r in rows) <= 1 << k <= max(int(r["bytes"]) for r in rows)]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([size_label(t).replace(" ", "") for t in ticks], fontsize=8)
    bottom.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    # allreduce-np2-shared.csv -> busbw-np2-shared.png; -oversubscribed is in the title.
    variant = re.search(r"np\d+((?:-[a-z]+)*)\.csv$", os.path.basename(path))
    suffix = variant.group(1).replace("-oversubscribed", "") if variant else ""
    out = os.path.join(os.path.dirname(path), f"busbw-np{ranks}{suffix}.png")
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def plot_time_vs_ranks(directory, runs, size):
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    algos = []
    for _, _, rows, _ in runs:
        for r in rows:
            if r["algo"] not in algos:
                algos.append(r["algo"])
    drawn = False
    for algo in algos:
        xs, ys = [], []
        for ranks, _, rows, _ in runs:
            for r in rows:
                if r["algo"] == algo and int(r["bytes"]) == size:
                    xs.append(ranks)
                    ys.append(float(r["time_us"]))
        if xs:
            color, marker = STYLE.get(algo, (None, "."))
            ax.plot(xs, ys, label=algo, color=color, marker=marker, linewidth=1.2)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    over = [ranks for ranks, o, _, _ in runs if o]
    if over:
        ax.axvspan(min(over) - 0.5, max(over) + 0.5, color="orange", alpha=0.15,
                   label="oversubscribed")
    ax.set_yscale("log")
    ax.set_xticks([ranks for ranks, _, _, _ in runs])
    ax.set_xlabel("ranks")
    ax.set_ylabel("median time per allreduce (us)")
    ax.set_title(f"allreduce of {size_label(size)} against the rank count", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(directory, f"time-vs-ranks-{size_label(size).replace(' ', '')}.png")
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--sizes", default="4K,16M",
                        help="message sizes of the time-vs-ranks plots (default 4K,16M)")
    parser.add_argument("--glob", default="allreduce-np*.csv",
                        help="ringdp-bench CSVs to plot, in the directory (default "
                             "allreduce-np*.csv; bench/cluster/scaling.sh: bench-n*.csv)")
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(args.directory, args.glob)))
    if not paths:
        raise SystemExit(f"plot.py: no {args.glob} in {args.directory}")
    runs = []
    for path in paths:
        ranks, over, rows, meta = load(path)
        if not rows:
            continue
        # A variant of a rank count (allreduce-np2-shared: --shared) has its own busbw plot,
        # not a point of its own in the rank-count plots.
        if not re.search(r"np\d+-(?!oversubscribed)[a-z]", os.path.basename(path)):
            runs.append((ranks, over, rows, meta))
        if ranks > 1:
            print(plot_busbw(path, ranks, over, rows, meta))
    # At 1 rank an allreduce moves nothing (a no-op or a copy): it would only stretch the
    # time axis by orders of magnitude, so the rank-count plots start at 2.
    runs = sorted((run for run in runs if run[0] > 1), key=lambda run: run[0])
    for size in args.sizes.split(","):
        out = plot_time_vs_ranks(args.directory, runs, parse_size(size))
        if out:
            print(out)


if __name__ == "__main__":
    main()
