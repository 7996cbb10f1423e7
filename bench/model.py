#!/usr/bin/python3
"""The alpha-beta-gamma cost model of allreduce, fitted to measurements and projected.

    bench/model.py --pingpong PINGPONG.csv [--bench BENCH.csv ...] [--out DIR]
                   [--rate 200mbit] [--alpha-100g 2e-6]

Model (n ranks, m bytes, one full-duplex link per rank, no contention in the switch):
  alpha  latency of one message (s), beta  time per byte on a link (s/B),
  gamma  time per byte of a local reduction y += x (s/B).

  ring          2(n-1) alpha + 2(n-1)/n m beta + (n-1)/n m gamma
                reduce-scatter then allgather, n-1 steps each, m/n bytes per step, every
                rank sending and receiving at once.
  rd            log2(n) (alpha + m beta + m gamma)
                recursive doubling: log2(n) exchanges of the whole buffer.
  rabenseifner  2 log2(n) alpha + 2(n-1)/n m beta + (n-1)/n m gamma
                reduce-scatter by recursive halving, allgather by recursive doubling: the
                ring's bandwidth term with a logarithmic latency term.
  ps            2(n-1) alpha + 2(n-1) m beta + (n-1) m gamma
                parameter server on rank 0: n-1 buffers come in over rank 0's one link, are
                reduced there, and n-1 results go out; the server handles the messages in
                turn, so its latency term is linear too.
Power-of-two n throughout (the projection uses 16..1024); the non-power-of-two variants add
a fold step that the model leaves out.

Fits:
  from ping-pong (bench/cluster/pingpong.c): beta is the least-squares slope of the one-way
  time over messages >= 1 MiB (well above the tbf burst, below which a token bucket lets a
  message through faster than the link rate); alpha is the median, over the message sizes
  <= 1 KiB, of each size's fastest one-way time (minus m beta): the network's latency. On
  a machine whose cores are busy with other work a rank is often not running when its
  message arrives, and the median times of the same sizes grow to milliseconds; that
  figure (alpha_median) is printed too, but it measures the CPU, not the network. gamma is
  the median time per byte of the in-cache reduction (64 KiB .. 2 MiB, the segment sizes a
  pipelined ring reduces).
  from ringdp-bench CSVs (optional): alpha and beta by least squares of the ring's measured
  time against 2(n-1) and 2(n-1)/n m (gamma from ping-pong), over all N and sizes.

Output: a table on stdout, model.csv and PNGs in --out (default: next to the ping-pong CSV).
"""

import argparse
import csv
import math
import os
import re
import statistics
import sys

ALGOS = ("ring", "rd", "rabenseifner", "ps")
PROJECT_N = [16, 32, 64, 128, 256, 512, 1024]
PROJECT_SIZES = [64 << 10, 1 << 20, 16 << 20, 64 << 20]
# 100 Gbit/s network. Bandwidth: the line rate at the same TCP/Ethernet payload fraction the
# emulated link showed (1448 payload bytes per 1514-byte frame). Latency: 2 us one-way, an
# assumed figure, not measured here: the order of the small-message MPI latency that the OSU
# micro-benchmarks (osu_latency) report over 100 Gbit/s InfiniBand through one switch.
# Plain TCP over 100 Gbit/s Ethernet is slower, about 10-20 us; pass --alpha-100g to see it.
PAYLOAD_FRACTION = 1448 / 1514


def model_time(algo, n, m, alpha, beta, gamma):
    """Seconds for an allreduce of m bytes over n ranks."""
    if n <= 1:
        return 0.0
    lg = math.log2(n)
    if algo == "ring":
        return 2 * (n - 1) * alpha + 2 * (n - 1) / n * m * beta + (n - 1) / n * m * gamma
    if algo == "rd":
        return lg * (alpha + m * beta + m * gamma)
    if algo == "rabenseifner":
        return 2 * lg * alpha + 2 * (n - 1) / n * m * beta + (n - 1) / n * m * gamma
    if algo == "ps":
        return 2 * (n - 1) * alpha + 2 * (n - 1) * m * beta + (n - 1) * m * gamma
    raise ValueError(f"unknown algorithm {algo}")


def parse_rate(text):
    """'200mbit' -> bits per second."""
    match = re.fullmatch(r"([0-9.]+)\s*([kmg]?)bit", text.strip().lower())
    if not match:
        raise SystemExit(f"model.py: bad rate '{text}' (want e.g. 200mbit, 1gbit)")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2)]
    return float(match.group(1)) * scale


def least_squares(xs, ys):
    """Slope and intercept of y = a + b x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("degenerate fit")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return b, my - b * mx


def fit_pingpong(path):
    rows = list(csv.DictReader(open(path)))
    by_mode = {}
    for r in rows:
        by_mode.setdefault(r["mode"], []).append((int(r["bytes"]), float(r["time_us_median"]) * 1e-6))
    pp = sorted(by_mode.get("pingpong", []))
    large = [(m, t) for m, t in pp if m >= 1 << 20]
    small = [(m, t) for m, t in pp if m <= 1024]
    if len(large) < 2 or not small:
        raise SystemExit(f"model.py: {path} needs ping-pong rows <= 1 KiB and >= 2 sizes >= 1 MiB")
    beta, _ = least_squares([m for m, _ in large], [t for _, t in large])
    alpha_median = statistics.median(t - m * beta for m, t in small)
    fastest = [(int(r["bytes"]), float(r["time_us_min"]) * 1e-6) for r in rows
               if r["mode"] == "pingpong" and int(r["bytes"]) <= 1024]
    alpha = statistics.median(t - m * beta for m, t in fastest)
    alpha_min = min(t for _, t in fastest)
    red = [t / m for m, t in by_mode.get("reduce", []) if (64 << 10) <= m <= (2 << 20)]
    gamma = statistics.median(red) if red else 0.0
    hosts = (rows[0].get("host0", "?"), rows[0].get("host1", "?")) if rows else ("?", "?")
    return {"alpha": alpha, "alpha_median": alpha_median, "alpha_min": alpha_min, "beta": beta,
            "gamma": gamma, "hosts": hosts, "large": large, "small": small}


AUTO_RAN = {}  # (n, bytes) -> the algorithm auto ran (ringdp-bench's 'runs' column)


def read_bench(paths):
    """Rows (n, algo, bytes, time_s) from ringdp-bench CSVs; n from a ranks column or -n<N>.
    Also fills AUTO_RAN from the auto rows."""
    out, seen = [], set()
    for path in paths:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        n_file = None
        match = re.search(r"n(\d+)", os.path.basename(path))
        if match:
            n_file = int(match.group(1))
        for r in rows:
            n = r.get("ranks") or r.get("nranks") or r.get("n") or n_file
            if n is None:
                raise SystemExit(f"model.py: {path}: no rank count (column 'ranks' or -n<N> in the name)")
            key = (int(n), r["algo"], int(r["bytes"]))
            if key in seen:  # the same point in two files (e.g. a reference ring): keep the first
                continue
            seen.add(key)
            out.append((*key, float(r["time_us"]) * 1e-6))
            if r["algo"] == "auto" and r.get("runs"):
                AUTO_RAN[(int(n), int(r["bytes"]))] = r["runs"]
    return out


def fit_bench(rows, gamma):
    """alpha, beta from the ring's times: t - (n-1)/n m gamma = 2(n-1) alpha + 2(n-1)/n m beta."""
    pts = [(n, m, t) for n, a, m, t in rows if a == "ring" and n > 1]
    if len(pts) < 3:
        return None
    # Two unknowns, no intercept: normal equations of a 2x2 system.
    x1 = [2 * (n - 1) for n, m, t in pts]
    x2 = [2 * (n - 1) / n * m for n, m, t in pts]
    y = [t - (n - 1) / n * m * gamma for n, m, t in pts]
    # Weight by 1/t so that small messages (latency) count as much as large ones (bandwidth).
    w = [1 / max(t, 1e-9) ** 2 for n, m, t in pts]
    a11 = sum(wi * a * a for wi, a in zip(w, x1))
    a12 = sum(wi * a * b for wi, a, b in zip(w, x1, x2))
    a22 = sum(wi * b * b for wi, b in zip(w, x2))
    b1 = sum(wi * a * c for wi, a, c in zip(w, x1, y))
    b2 = sum(wi * b * c for wi, b, c in zip(w, x2, y))
    det = a11 * a22 - a12 * a12
    if det == 0:
        return None
    return (b1 * a22 - b2 * a12) / det, (a11 * b2 - a12 * b1) / det


def fmt_bytes(m):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if m >= 1 << shift:
            return f"{m / (1 << shift):.3g} {unit}"
    return f"{m} B"


def fmt_time(t):
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    return f"{t * 1e6:.1f} us"


def crossover_ring_vs_rd(n, alpha, beta, gamma):
    """Smallest m (bytes) from which ring is faster than recursive doubling, or None."""
    lg = math.log2(n)
    # ring - rd = [2(n-1) - lg] alpha + m [(n-1)/n (2 beta + gamma) - lg (beta + gamma)]
    a = (2 * (n - 1) - lg) * alpha
    b = (n - 1) / n * (2 * beta + gamma) - lg * (beta + gamma)
    if b >= 0:
        return None if a > 0 else 0
    return a / -b


def print_projection(name, alpha, beta, gamma, writer):
    print(f"\n## Projection: {name}  (alpha {alpha * 1e6:.2f} us, "
          f"link {1 / beta / 1e6:.1f} MB/s, gamma {1 / gamma / 1e9 if gamma else float('inf'):.1f} GB/s)")
    header = f"{'n':>5} {'size':>8} " + " ".join(f"{a:>12}" for a in ALGOS) + f" {'best':>13} {'ring/best':>9} {'ps/ring':>8}"
    print(header)
    for n in PROJECT_N:
        for m in PROJECT_SIZES:
            times = {a: model_time(a, n, m, alpha, beta, gamma) for a in ALGOS}
            best = min(times, key=times.get)
            print(f"{n:>5} {fmt_bytes(m):>8} " + " ".join(f"{fmt_time(times[a]):>12}" for a in ALGOS)
                  + f" {best:>13} {times['ring'] / times[best]:>9.2f} {times['ps'] / times['ring']:>8.1f}")
            for a in ALGOS:
                writer.writerow([name, n, m, a, f"{times[a]:.9g}"])
    print("ring beats recursive doubling from:",
          ", ".join(f"n={n}: {fmt_bytes(int(c)) if c is not None else 'never'}"
                    for n in PROJECT_N for c in [crossover_ring_vs_rd(n, alpha, beta, gamma)]))
    def within_10pct(n):
        # ring and rabenseifner share the bandwidth term B m; ring <= 1.1 rabenseifner from
        # m = (A_ring - 1.1 A_rab) / (0.1 B), with A the latency terms.
        a_ring, a_rab = 2 * (n - 1) * alpha, 2 * math.log2(n) * alpha
        b = 2 * (n - 1) / n * beta + (n - 1) / n * gamma
        return max(0.0, (a_ring - 1.1 * a_rab) / (0.1 * b))
    print("ring within 10% of rabenseifner from:",
          ", ".join(f"n={n}: {fmt_bytes(int(within_10pct(n)))}" for n in PROJECT_N))
    gap = [(n, 2 * (n - 1) * alpha - 2 * math.log2(n) * alpha) for n in PROJECT_N]
    print("rabenseifner vs ring: same bandwidth term; rabenseifner saves "
          + ", ".join(f"{fmt_time(g)} at n={n}" for n, g in gap)
          + " of latency (the model has no switch contention, which is what favours the ring's"
          " neighbour-only traffic on real, oversubscribed networks)")


def summarize_measured(measured, alpha, beta, gamma, link_rate):
    """The issue's questions, answered from the measurements."""
    t = {(n, a, m): tt for n, a, m, tt in measured}
    ns = sorted({n for n, _, _, _ in measured})
    sizes = sorted({m for _, _, m, _ in measured})
    print("\n## Ring against the bandwidth bound 2(n-1)/n S/B (B = link payload rate "
          f"{link_rate / 1e6:.2f} MB/s)")
    for m in sizes:
        if m < (1 << 20):
            continue
        parts = []
        for n in ns:
            if (n, "ring", m) in t:
                bound = 2 * (n - 1) / n * m / link_rate
                parts.append(f"N={n}: {fmt_time(t[(n, 'ring', m)])} = {t[(n, 'ring', m)] / bound:.2f}x bound")
        if parts:
            print(f"  {fmt_bytes(m):>8}: " + "; ".join(parts))
    for m in sizes:
        if (4, "ring", m) in t and (8, "ring", m) in t and m >= (1 << 20):
            print(f"  ring {fmt_bytes(m)}: time(N=8)/time(N=4) = {t[(8, 'ring', m)] / t[(4, 'ring', m)]:.2f}")
    print("\n## Parameter server against ring (measured time ratio ps/ring; the model says ~n for large S)")
    for m in sizes:
        parts = [f"N={n}: {t[(n, 'ps', m)] / t[(n, 'ring', m)]:.2f}" for n in ns
                 if (n, "ps", m) in t and (n, "ring", m) in t]
        if parts:
            print(f"  {fmt_bytes(m):>8}: " + "; ".join(parts))
    print("\n## auto against the best measured algorithm (ratio > 1.10 misses the 10% target);"
          "\n## 'auto/same' = auto's time over that of the algorithm it ran, measured in the same"
          "\n## run: the same code timed twice, so its distance from 1 is the measurement noise")
    worst = (0, None)
    for n in ns:
        for m in sizes:
            cand = {a: t[(n, a, m)] for a in ("ring", "rd", "mpi", "ps") if (n, a, m) in t}
            if (n, "auto", m) not in t or not cand:
                continue
            best = min(cand, key=cand.get)
            ratio = t[(n, "auto", m)] / cand[best]
            worst = max(worst, (ratio, (n, m)))
            ran = AUTO_RAN.get((n, m), "?")
            same = (f"{t[(n, 'auto', m)] / t[(n, ran, m)]:.2f}" if (n, ran, m) in t else "-")
            print(f"  N={n} {fmt_bytes(m):>8}: best {best:>4} {fmt_time(cand[best]):>10}, "
                  f"auto {fmt_time(t[(n, 'auto', m)]):>10} = {ratio:.2f}x; auto ran {ran:>4}, "
                  f"auto/same {same}")
    if worst[1]:
        print(f"  worst: {worst[0]:.2f}x at N={worst[1][0]}, {fmt_bytes(worst[1][1])}")


def plot_scaling(out_dir, measured, alpha, beta, gamma):
    """Measured time vs N at fixed sizes, next to the model's lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    have = sorted({m for _, _, m, _ in measured})
    sizes = [m for m in (1 << 20, 16 << 20, 64 << 20) if m in have] or have[-3:]
    ns = sorted({n for n, _, _, _ in measured})
    colours = {"ring": "C0", "rd": "C1", "rabenseifner": "C2", "ps": "C3", "mpi": "C4", "auto": "C5"}
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.2), squeeze=False)
    for ax, m in zip(axes[0], sizes):
        grid = [n / 4 for n in range(4 * min(ns), 4 * max(ns) + 1)]
        for a in ("ring", "rd", "ps"):
            ax.plot(grid, [model_time(a, n, m, alpha, beta, gamma) for n in grid], "-",
                    color=colours[a], alpha=0.6, label=f"{a} model")
        for a in ("ring", "rd", "ps", "mpi", "auto"):
            pts = sorted((n, t) for n, al, mm, t in measured if al == a and mm == m)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o--" if a in ("mpi", "auto") else "o",
                        color=colours[a], label=f"{a} measured")
        ax.set_xticks(ns)
        ax.set_xlabel("hosts (one rank each)")
        ax.set_ylabel("allreduce time (s)")
        ax.set_yscale("log")
        ax.set_title(f"{fmt_bytes(m)} allreduce, emulated links")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "scaling-vs-model.png")
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)
    print(f"wrote {os.path.basename(path)}")


def plot(out_dir, nets, measured):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [64 << 10, 16 << 20]
    fig, axes = plt.subplots(len(nets), len(sizes), figsize=(11, 4.2 * len(nets)), squeeze=False)
    ns = [2 ** k for k in range(1, 11)]
    colours = {"ring": "C0", "rd": "C1", "rabenseifner": "C2", "ps": "C3", "mpi": "C4", "auto": "C5"}
    for row, (name, alpha, beta, gamma) in enumerate(nets):
        for col, m in enumerate(sizes):
            ax = axes[row][col]
            for a in ALGOS:
                ax.plot(ns, [model_time(a, n, m, alpha, beta, gamma) for n in ns], "-",
                        color=colours[a], label=f"{a} (model)")
            if row == 0 and measured:
                for a in ("ring", "rd", "ps", "mpi", "auto"):
                    pts = sorted((n, t) for n, al, mm, t in measured if al == a and mm == m)
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=colours[a],
                                label=f"{a} (measured)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("ranks (one per host)")
            ax.set_ylabel("allreduce time (s)")
            ax.set_title(f"{name}: {fmt_bytes(m)}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "model-projection.png")
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)
    print(f"wrote {os.path.basename(path)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pingpong", required=True, help="CSV from ringdp-pingpong")
    ap.add_argument("--bench", nargs="*", default=[], help="ringdp-bench CSVs (rank count in a "
                    "'ranks' column or as -n<N> in the file name)")
    ap.add_argument("--rate", default="200mbit", help="the emulated link rate (for the check)")
    ap.add_argument("--alpha-100g", type=float, default=2e-6,
                    help="one-way latency assumed for the 100 Gbit/s projection (s)")
    ap.add_argument("--out", help="output directory (default: the ping-pong CSV's)")
    args = ap.parse_args()
    out_dir = args.out or os.path.dirname(os.path.abspath(args.pingpong))
    os.makedirs(out_dir, exist_ok=True)

    fit = fit_pingpong(args.pingpong)
    alpha, beta, gamma = fit["alpha"], fit["beta"], fit["gamma"]
    rate = parse_rate(args.rate)
    payload = rate / 8 * PAYLOAD_FRACTION
    print(f"# ping-pong fit ({fit['hosts'][0]} <-> {fit['hosts'][1]}, {os.path.basename(args.pingpong)})")
    print(f"alpha = {alpha * 1e6:.2f} us (one-way: median over the sizes <= 1 KiB of each size's "
          f"fastest time; fastest of all {fit['alpha_min'] * 1e6:.2f} us); the median times of "
          f"the same sizes give {fit['alpha_median'] * 1e6:.2f} us: the larger it is, the more "
          "the shared CPU, not the network, sets the small-message latency")
    print(f"beta  = {beta * 1e9:.3f} ns/B = {1 / beta / 1e6:.2f} MB/s (messages >= 1 MiB); "
          f"the {args.rate} link's TCP payload rate is {payload / 1e6:.2f} MB/s: "
          f"measured/expected = {1 / beta / payload:.3f}")
    print(f"gamma = {gamma * 1e9:.4f} ns/B = {1 / gamma / 1e9 if gamma else float('inf'):.1f} GB/s "
          "(float y += x, 64 KiB .. 2 MiB, in cache)")

    measured = read_bench(args.bench) if args.bench else []
    if measured:
        fb = fit_bench(measured, gamma)
        if fb:
            print(f"# ring fit from {len(args.bench)} ringdp-bench CSV(s): alpha = {fb[0] * 1e6:.2f} us, "
                  f"beta = {fb[1] * 1e9:.3f} ns/B = {1 / fb[1] / 1e6:.2f} MB/s")
        print("\n## Measured vs model (ping-pong alpha/beta/gamma)")
        print(f"{'n':>3} {'algo':>6} {'size':>8} {'measured':>11} {'model':>11} {'meas/model':>10}")
        for n, a, m, t in sorted(measured):
            ma = {"mpi": None, "auto": None}.get(a, a)
            if ma is None or m < (64 << 10):
                continue
            mt = model_time(ma, n, m, alpha, beta, gamma)
            print(f"{n:>3} {a:>6} {fmt_bytes(m):>8} {fmt_time(t):>11} {fmt_time(mt):>11} {t / mt:>10.2f}")
        summarize_measured(measured, alpha, beta, gamma, payload)

    beta_100g = 1 / (100e9 / 8 * PAYLOAD_FRACTION)
    nets = [(f"emulated {args.rate}", alpha, beta, gamma),
            ("100 Gbit/s", args.alpha_100g, beta_100g, gamma)]
    path = os.path.join(out_dir, "model.csv")
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["network", "ranks", "bytes", "algo", "time_s"])
        for name, a_, b_, g_ in nets:
            print_projection(name, a_, b_, g_, w)
    os.replace(path + ".tmp", path)
    print(f"\nwrote {os.path.basename(path)}")
    plot(out_dir, nets, measured)
    if measured:
        plot_scaling(out_dir, measured, alpha, beta, gamma)
    return 0


if __name__ == "__main__":
    sys.exit(main())
