#!/usr/bin/python3
"""Hierarchical allreduce against the flat ring on the emulated cluster (scaling.sh, "hier").

usage: hier_report.py OUT [--rate 200mbit]

Reads OUT/hier-h<H>-<placement>.csv (ringdp-bench ring, hier, auto on H hosts with several
ranks each, placed by slot or round-robin by node) and prints, per hosts, placement and size,
the median times, hier's time over its bound 2(H-1)/H x S / B (B: the link's TCP payload
rate, RATE x 1448/1514: every byte of hier's ring between hosts crosses each host's link
2(H-1)/H times, whatever the ranks per host), and hier's speed-up over the flat ring. Then
the criteria: at 16 MiB hier within 1.15x its bound, >= 1.0x the flat ring placed by slot
and >= 1.5x placed round-robin; from 64 KiB to 1 MiB hier >= 1.5x the flat ring at 4 hosts.
Draws OUT/hier-vs-ring.png.
"""
import argparse
import csv
import glob
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def payload_rate(rate):
    m = re.fullmatch(r"([\d.]+)([kmg]?)bit", rate.lower())
    if not m:
        raise SystemExit(f"hier_report.py: bad rate {rate!r}")
    bits = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
    return bits / 8 * 1448 / 1514


def size_label(b):
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= factor and b % factor == 0:
            return f"{b // factor} {unit}"
    return f"{b} B"


def load(out):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "hier-h*-*.csv"))):
        m = re.search(r"hier-h(\d+)-(slot|node)\.csv$", path)
        if not m:
            continue
        times = {}
        for r in csv.DictReader(open(path)):
            algo = r["algo"] if r["algo"] != "auto" else f"auto({r['runs']})"
            times.setdefault(int(r["bytes"]), {})[algo] = float(r["time_us"]) * 1e-6
        runs[(int(m.group(1)), m.group(2))] = times
    return runs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rate", default="200mbit")
    args = parser.parse_args()
    rate = payload_rate(args.rate)
    runs = load(args.out)
    if not runs:
        raise SystemExit(f"hier_report.py: no hier-h*-*.csv in {args.out}")
    print(f"link payload rate B = {rate / 1e6:.2f} MB/s ({args.rate} x 1448/1514)")
    print(f"{'hosts':>5} {'placed':>6} {'size':>8} {'ring':>10} {'hier':>10} {'auto':>18} "
          f"{'bound':>10} {'hier/bound':>10} {'ring/hier':>9}")
    criteria = []
    for (hosts, placement), times in sorted(runs.items()):
        for size, t in sorted(times.items()):
            bound = 2 * (hosts - 1) / hosts * size / rate
            auto = next(((k, v) for k, v in t.items() if k.startswith("auto")), ("-", None))
            ring, hier = t.get("ring"), t.get("hier")
            print(f"{hosts:>5} {placement:>6} {size_label(size):>8} "
                  f"{ring if ring is None else f'{ring * 1e3:.2f} ms':>10} "
                  f"{hier if hier is None else f'{hier * 1e3:.2f} ms':>10} "
                  f"{(f'{auto[1] * 1e3:.2f} ms ' + auto[0][5:-1]) if auto[1] else '-':>18} "
                  f"{bound * 1e3:>7.2f} ms {hier / bound if hier else 0:>10.2f} "
                  f"{ring / hier if ring and hier else 0:>9.2f}")
            if not (ring and hier):
                continue
            if size == 16 << 20:
                criteria.append((f"{hosts} hosts, {placement}, 16 MiB: hier within 1.15x of "
                                 "its bound", hier / bound, hier / bound <= 1.15))
                need = 1.0 if placement == "slot" else 1.5
                criteria.append((f"{hosts} hosts, {placement}, 16 MiB: hier >= {need}x the flat "
                                 "ring", ring / hier, ring / hier >= need))
            if hosts == 4 and (64 << 10) <= size <= (1 << 20):
                criteria.append((f"4 hosts, {placement}, {size_label(size)}: hier >= 1.5x the "
                                 "flat ring", ring / hier, ring / hier >= 1.5))
    print("\ncriteria:")
    for what, value, met in criteria:
        print(f"  {'met' if met else 'NOT met':>7}  {what}: {value:.2f}")
    plot(args.out, runs, rate)


def plot(out, runs, rate):
    fig, axes = plt.subplots(1, len({h for h, _ in runs}), figsize=(11, 4.2), squeeze=False)
    for ax, hosts in zip(axes[0], sorted({h for h, _ in runs})):
        for (h, placement), times in sorted(runs.items()):
            if h != hosts:
                continue
            sizes = sorted(times)
            style = "-" if placement == "slot" else "--"
            for algo, color in (("ring", "tab:red"), ("hier", "tab:purple")):
                ys = [times[s].get(algo) for s in sizes]
                ax.plot(sizes, [y * 1e3 if y else None for y in ys], style, color=color,
                        marker="o", markersize=3, label=f"{algo} ({placement})")
        sizes = sorted({s for (h, _), t in runs.items() if h == hosts for s in t})
        ax.plot(sizes, [2 * (hosts - 1) / hosts * s / rate * 1e3 for s in sizes], ":",
                color="black", label="bound 2(H-1)/H S/B")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("message size (bytes)")
        ax.set_ylabel("median time per allreduce (ms)")
        ax.set_title(f"{hosts} hosts x ranks per host", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "hier-vs-ring.png")
    fig.savefig(path, dpi=80)
    # Relative to the working directory when below it: the report is committed with the
    # results and must not name a directory of the machine it ran on.
    shown = os.path.relpath(path)
    print(f"plot: {path if shown.startswith('..') else shown}")


if __name__ == "__main__":
    main()
