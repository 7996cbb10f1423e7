#!/usr/bin/python3
"""plot_training.py DIR: training throughput and exposed communication vs host count, from
the metrics CSVs train-n<N>.csv that scaling.sh writes (the last row of each: the final
epoch). Prints a table and writes training-scaling.png in DIR.

Column names are matched loosely (samples/s: a name with 'samples' and 's'; exposed
communication: a name with 'comm', as a fraction, or as seconds next to a wall/total time)."""
import csv
import glob
import os
import re
import sys


def pick(cols, *words, avoid=()):
    for c in cols:
        lc = c.lower()
        if all(w in lc for w in words) and not any(a in lc for a in avoid):
            return c
    return None


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    rows = []
    for path in glob.glob(os.path.join(d, "train-n*.csv")):
        n = int(re.search(r"train-n(\d+)\.csv$", path).group(1))
        with open(path) as f:
            data = list(csv.DictReader(f))
        if not data:
            continue
        last, cols = data[-1], list(data[-1].keys())
        sps = pick(cols, "samples", "s", avoid=("total",))
        frac = pick(cols, "comm", "frac") or pick(cols, "exposed", "frac")
        comm_s = pick(cols, "comm", avoid=("frac",))
        wall = pick(cols, "wall") or pick(cols, "epoch_time") or pick(cols, "time", avoid=("comm",))
        throughput = float(last[sps]) if sps else float("nan")
        if frac:
            fraction = float(last[frac])
        elif comm_s and wall and float(last[wall]) > 0:
            fraction = float(last[comm_s]) / float(last[wall])
        else:
            fraction = float("nan")
        rows.append((n, throughput, fraction))
    if not rows:
        print(f"plot_training.py: no train-n*.csv in {d}")
        return 1
    rows.sort()
    print(f"{'hosts':>5} {'samples/s':>10} {'exposed comm':>13}")
    for n, t, fr in rows:
        print(f"{n:>5} {t:>10.1f} {fr * 100:>12.1f}%")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r[0] for r in rows]
    ax.plot(ns, [r[1] for r in rows], "o-", label="measured samples/s")
    if rows[0][1] == rows[0][1]:
        base = rows[0][1] / rows[0][0]
        ax.plot(ns, [base * n for n in ns], "--", color="grey", label=f"linear from N={ns[0]}")
    ax.set_xlabel("hosts (one rank each)")
    ax.set_ylabel("training samples/s")
    ax.set_xticks(ns)
    ax.grid(True, alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(ns, [r[2] * 100 for r in rows], "s:", color="C3", label="exposed communication")
    ax2.set_ylabel("exposed communication (% of step time)")
    ax2.set_ylim(0, 100)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    fig.tight_layout()
    out = os.path.join(d, "training-scaling.png")
    fig.savefig(out + ".tmp.png", dpi=110)
    os.replace(out + ".tmp.png", out)
    print(f"wrote {os.path.basename(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
