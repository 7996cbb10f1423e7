#!/usr/bin/python3
"""The ring's busbw per size and variant from bench/ring_dip.sh's runs.

usage: bench/ring_dip.py DIR

Reads DIR/<variant>-r<round>.csv, prints per size the ring's and MPI_Allreduce's busbw
(median over rounds) for every variant, the ring's 64 MiB busbw against the mean of its
32 and 128 MiB neighbours (a dip is < 1), and the ranks' page faults and context switches
per run (DIR/*.perf.<rank>, perf stat's CSV). Writes DIR/dip.txt and DIR/dip.png.
"""
import csv
import glob
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(d):
    runs = {}  # variant -> size -> algo -> [busbw]
    order = []
    for path in sorted(glob.glob(os.path.join(d, "*-r*.csv"))):
        m = re.match(r"(.+)-r(\d+)\.csv$", os.path.basename(path))
        variant = m.group(1)
        if variant not in order:
            order.append(variant)
        for r in csv.DictReader(open(path)):
            runs.setdefault(variant, {}).setdefault(int(r["bytes"]), {}).setdefault(
                r["algo"], []).append(float(r["busbw_GBps"]))
    if not runs:
        sys.exit(f"ring_dip.py: no runs in {d}")
    sizes = sorted({b for v in runs.values() for b in v})
    lines = ["busbw GB/s, median over rounds: ring (mpi)",
             "size      " + "".join(f"{v:>18}" for v in order)]
    for b in sizes:
        cells = []
        for v in order:
            a = runs[v].get(b, {})
            ring = statistics.median(a["ring"]) if "ring" in a else float("nan")
            mpi = statistics.median(a["mpi"]) if "mpi" in a else float("nan")
            cells.append(f"{ring:9.3f} ({mpi:5.3f})")
        lines.append(f"{b >> 20:4d} MiB  " + "".join(f"{c:>18}" for c in cells))
    mib = 1 << 20
    lines.append("")
    lines.append("ring at 64 MiB / mean of 32 and 128 MiB (a dip is < 1):")
    for v in order:
        med = {b: statistics.median(a["ring"]) for b, a in runs[v].items() if "ring" in a}
        if all(k in med for k in (32 * mib, 64 * mib, 128 * mib)):
            ratio = med[64 * mib] / ((med[32 * mib] + med[128 * mib]) / 2)
            lines.append(f"  {v:10s} {ratio:.2f}")
    perf = sorted(glob.glob(os.path.join(d, "*.perf.*")))
    if perf:
        lines.append("")
        lines.append("page faults, context switches per rank and run:")
        for path in perf:
            counts = {}
            for row in csv.reader(open(path)):
                if len(row) > 2 and row[0].strip().isdigit():
                    counts[row[2]] = int(row[0])
            lines.append(f"  {os.path.basename(path):28s} {counts.get('page-faults', '-'):>10} "
                         f"{counts.get('context-switches', '-'):>10}")
    text = "\n".join(lines)
    print(text)
    open(os.path.join(d, "dip.txt"), "w").write(text + "\n")
    fig, ax = plt.subplots(figsize=(7, 4))
    for v in order:
        xs = [b for b in sizes if "ring" in runs[v].get(b, {})]
        ax.plot([b / mib for b in xs], [statistics.median(runs[v][b]["ring"]) for b in xs],
                marker="o", label=f"ring, {v}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("MiB per rank")
    ax.set_ylabel("busbw GB/s (median over rounds)")
    ax.set_title("ring at 2 ranks: the 64 MiB dip under each variant")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "dip.png"), dpi=120)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
