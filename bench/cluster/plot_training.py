#!/usr/bin/python3
"""plot_training.py DIR: training throughput and exposed communication against the host
count, from the ringdp-train metrics CSVs train-<algo>-n<N>.csv that bit_identity.sh writes
and train-<algo>-n<N>-r<k>.csv of further runs (scaling.sh makes both). Per file, the epoch
rows are summed: samples/s = samples / seconds, and the exposed communication fraction =
exposed_comm_s over the step's parts (data, forward, backward, exposed communication,
optimizer), as ringdp-train's summary computes it; per algorithm and N, the run with the
median samples/s is reported, with the range over runs. Prints a table (with the
bit-identity verdict from bitwise-<algo>-n<N>.txt) and writes training-scaling.png in DIR."""
import csv
import glob
import os
import re
import sys

PARTS = ("data_s", "forward_s", "backward_s", "exposed_comm_s", "optimizer_s")


def summarize(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("kind") == "epoch"]
    if not rows:
        return None
    total = {c: sum(float(r[c] or 0) for r in rows) for c in ("samples", "seconds") + PARTS}
    whole = sum(total[c] for c in PARTS)
    return {
        "samples_per_s": total["samples"] / total["seconds"] if total["seconds"] > 0 else float("nan"),
        "exposed": total["exposed_comm_s"] / whole if whole > 0 else float("nan"),
        "exposed_s": total["exposed_comm_s"],
        "seconds": total["seconds"],
    }


def verdict(d, algo, n):
    path = os.path.join(d, f"bitwise-{algo}-n{n}.txt")
    if not os.path.exists(path):
        return "not run"
    text = open(path).read()
    return "yes" if "bit-identical: yes" in text else "NO" if "bit-identical: NO" in text else "?"


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    all_runs = {}
    for path in glob.glob(os.path.join(d, "train-*-n*.csv")):
        m = re.search(r"train-([a-z]+)-n(\d+)(?:-r\d+)?\.csv$", path)
        s = summarize(path) if m else None
        if s:
            all_runs.setdefault((m.group(1), int(m.group(2))), []).append(s)
    runs = {}
    for (algo, n), ss in all_runs.items():
        ss.sort(key=lambda s: s["samples_per_s"])
        median = dict(ss[(len(ss) - 1) // 2])
        median["range"] = (ss[0]["samples_per_s"], ss[-1]["samples_per_s"], len(ss))
        runs.setdefault(algo, []).append((n, median))
    if not runs:
        print(f"plot_training.py: no train-<algo>-n<N>.csv with epoch rows in {d}")
        return 1
    print(f"{'algo':>5} {'hosts':>5} {'samples/s':>10} {'(runs: min..max)':>22} {'train s':>8} "
          f"{'exposed comm':>13} {'bit-identical to shared memory':>31}")
    for algo in sorted(runs):
        runs[algo].sort(key=lambda r: r[0])
        for n, s in runs[algo]:
            lo, hi, k = s["range"]
            spread = f"({k}: {lo:.0f}..{hi:.0f})"
            print(f"{algo:>5} {n:>5} {s['samples_per_s']:>10.1f} {spread:>22} {s['seconds']:>8.2f} "
                  f"{s['exposed'] * 100:>12.1f}% {verdict(d, algo, n):>31}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax2 = ax.twinx()
    for i, algo in enumerate(sorted(runs)):
        ns = [n for n, _ in runs[algo]]
        ax.plot(ns, [s["samples_per_s"] for _, s in runs[algo]], "o-", color=f"C{i}",
                label=f"{algo}: samples/s")
        ax2.plot(ns, [s["exposed"] * 100 for _, s in runs[algo]], "s:", color=f"C{i}",
                 label=f"{algo}: exposed communication")
        ax.set_xticks(ns)
    ax.set_xlabel("hosts (one rank each)")
    ax.set_ylabel("training samples/s")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax2.set_ylabel("exposed communication (% of step time)")
    ax2.set_ylim(0, 100)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    ax.set_title("ringdp-train on the emulated cluster", fontsize=10)
    fig.tight_layout()
    out = os.path.join(d, "training-scaling.png")
    fig.savefig(out + ".tmp.png", dpi=90)
    os.replace(out + ".tmp.png", out)
    print(f"wrote {os.path.basename(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
