#!/usr/bin/python3
"""Data vs model parallelism, measured: runs bench-parallelism for every layout of the
comparison (1 rank, data-parallel ring, data-parallel parameter server, tensor parallel,
pipeline parallel, data x tensor hybrid) on one synthetic dataset and one MLP, then the
per-replica batch x hidden width sweep (data- vs tensor-parallel bytes), then
bench-pipeline-bubble, and writes into --out:

  layouts.csv     one row per layout: the comparison table's figures
  sweep.csv       one row per (layout, width, batch): bytes per rank per step, counted and modelled
  bubble.txt      bench-pipeline-bubble's table
  table.md        the comparison table (bench/parallelism/README.md quotes it)
  *.png           the plots
  json/           every run's raw figures

  /usr/bin/python3 bench/parallelism/run_comparison.py --build build --out bench/parallelism/results
"""

import argparse
import csv
import json
import os
import subprocess
import sys

LAYOUTS = [
    # name, ranks, bench-parallelism arguments
    ("1-rank", 1, []),
    ("dp-ring", 4, ["--data-algorithm", "ring"]),
    ("dp-ps", 4, ["--data-algorithm", "ps"]),
    ("tp", 4, ["--tp", "4"]),
    ("pp", 4, ["--pp", "4"]),
    ("dp2xtp2", 4, ["--tp", "2"]),
]


def run(cmd, quiet=False):
    print("+", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    if not quiet:
        sys.stdout.write(out.stdout)
    return out.stdout


def mpirun(args, ranks):
    # RINGDP_NODE_SIZE=1: every rank counts as a node of its own, as on a cluster with one
    # rank per node. On one node the tensor group's allreduces would go through the shared
    # window (Auto picks shm) and send no message, and the byte counts would compare the
    # layouts on this machine only.
    return (["mpirun", "-np", str(ranks), "-x", "RINGDP_NODE_SIZE=1"] +
            args.mpirun_args.split())


def bench(args, name, ranks, extra, json_path, model, batch, epochs, max_steps=0, warmup=3):
    cmd = mpirun(args, ranks) + [
        os.path.join(args.build, "bench/parallelism/bench-parallelism"), "--data", args.dataset,
        "--model", model, "--batch", str(batch), "--epochs", str(epochs), "--name", name,
        "--micro-batches", str(args.micro_batches), "--lr", str(args.lr), "--json", json_path,
        "--max-steps", str(max_steps), "--warmup", str(warmup)] + extra
    run(cmd)
    with open(json_path) as f:
        return json.load(f)


def per_rank(result):
    fields = result["rank_fields"]
    return [dict(zip(fields, row)) for row in result["per_rank"]]


def figures(result):
    """The comparison table's figures of one run."""
    ranks = per_rank(result)
    n = len(ranks)
    mean = lambda key: sum(r[key] for r in ranks) / n
    sent = [r["tensor_bytes"] + r["pipeline_bytes"] + r["data_bytes"] for r in ranks]
    model = [r["tensor_bytes_model"] + r["pipeline_bytes_model"] + r["data_bytes_model"]
             for r in ranks]
    compute = [r["compute_s"] for r in ranks]
    step = max(r["step_s"] for r in ranks)
    exposed = mean("tensor_comm_s") + mean("pipeline_wait_s") + mean("data_comm_s")
    pipeline = result["pipeline"] > 1
    return {
        "layout": result["name"],
        "grid": f"D{result['data']} T{result['tensor']} P{result['pipeline']}",
        "bytes_mean": sum(sent) / n,
        "bytes_max": max(sent),
        "bytes_model_mean": sum(model) / n,
        "bytes_model_max": max(model),
        "tensor_bytes": mean("tensor_bytes"),
        "pipeline_bytes": mean("pipeline_bytes"),
        "data_bytes": mean("data_bytes"),
        "step_ms": step * 1e3,
        "compute_ms": sum(compute) / n * 1e3,
        "exposed_ms": exposed * 1e3,
        "tensor_comm_ms": mean("tensor_comm_s") * 1e3,
        "pipeline_wait_ms": mean("pipeline_wait_s") * 1e3,
        "data_comm_ms": mean("data_comm_s") * 1e3,
        "memory_max": max(r["memory_bytes"] for r in ranks),
        "imbalance": max(compute) / (sum(compute) / n) if sum(compute) > 0 else 1.0,
        "bubble": mean("idle_fraction") if pipeline else float("nan"),
        "ideal_bubble": result["ideal_bubble"] if pipeline else float("nan"),
        "samples_per_s": result["batch"] / step if step > 0 else 0.0,
        "final_train_loss": result["train_loss"][-1],
        "final_accuracy": result["test_accuracy"][-1],
        "accuracy": result["test_accuracy"],
        "train_loss": result["train_loss"],
    }


def kib(b):
    return f"{b / 1024:.1f}"


def table(rows):
    head = ("| layout | grid | sent KiB/rank/step (model) | busiest rank KiB | step ms | "
            "compute ms | exposed comm ms (tensor / pipeline / data) | params+opt KiB/rank | "
            "compute max/mean | bubble (ideal) | test acc | train loss |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines = []
    for r in rows:
        bubble = "-" if r["bubble"] != r["bubble"] else \
            f"{100 * r['bubble']:.0f}% ({100 * r['ideal_bubble']:.0f}%)"
        lines.append(
            f"| {r['layout']} | {r['grid']} | {kib(r['bytes_mean'])} ({kib(r['bytes_model_mean'])}) "
            f"| {kib(r['bytes_max'])} | {r['step_ms']:.2f} | {r['compute_ms']:.2f} | "
            f"{r['exposed_ms']:.2f} ({r['tensor_comm_ms']:.2f} / {r['pipeline_wait_ms']:.2f} / "
            f"{r['data_comm_ms']:.2f}) | {kib(r['memory_max'])} | {r['imbalance']:.2f} | {bubble} "
            f"| {r['final_accuracy']:.4f} | {r['final_train_loss']:.4f} |")
    return head + "\n".join(lines) + "\n"


def write_csv(path, rows, keys):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def sweep(args, jdir):
    rows = []
    for width in args.sweep_widths:
        model = f"{args.features}-{width}-{width}-{args.classes}"
        for batch in args.sweep_batches:  # per replica: dp4 takes 4x as many samples per step
            for name, extra, global_batch in (("dp-ring", ["--data-algorithm", "ring"], 4 * batch),
                                              ("tp", ["--tp", "4"], batch)):
                path = os.path.join(jdir, f"sweep-{name}-w{width}-b{batch}.json")
                # Two epochs: the largest global batch leaves 2 steps per epoch.
                res = bench(args, name, 4, extra, path, model, global_batch, 2, args.sweep_steps,
                            warmup=1)
                f = figures(res)
                rows.append({"layout": name, "width": width, "batch_per_replica": batch,
                             "global_batch": global_batch, "bytes_mean": f["bytes_mean"],
                             "bytes_model_mean": f["bytes_model_mean"], "step_ms": f["step_ms"]})
    return rows


def plots(out, rows, sweep_rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["layout"] for r in rows]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    x = range(len(rows))
    ax[0].bar([i - 0.2 for i in x], [r["bytes_mean"] / 1024 for r in rows], 0.4, label="counted")
    ax[0].bar([i + 0.2 for i in x], [r["bytes_model_mean"] / 1024 for r in rows], 0.4,
              label="cost model")
    ax[0].set_ylabel("KiB sent per rank per step (mean)")
    ax[0].legend()
    bottom = [0.0] * len(rows)
    for key, label in (("compute_ms", "compute"), ("tensor_comm_ms", "tensor allreduces"),
                       ("pipeline_wait_ms", "pipeline wait"), ("data_comm_ms", "gradient avg")):
        vals = [r[key] for r in rows]
        ax[1].bar(x, vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax[1].set_ylabel("ms per step (mean over ranks)")
    ax[1].legend()
    ax[2].bar(x, [r["memory_max"] / 1024 for r in rows])
    ax[2].set_ylabel("parameter + optimizer KiB per rank")
    for a in ax:
        a.set_xticks(list(x))
        a.set_xticklabels(names, rotation=30)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "layouts.png"), dpi=100)

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot(range(1, len(r["accuracy"]) + 1), r["accuracy"], marker="o", label=r["layout"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "accuracy.png"), dpi=100)

    fig, ax = plt.subplots(figsize=(7, 5))
    widths = sorted({r["width"] for r in sweep_rows})
    for i, w in enumerate(widths):
        color = f"C{i}"
        for name, style in (("dp-ring", "-"), ("tp", "--")):
            pts = sorted((r["batch_per_replica"], r["bytes_mean"], r["bytes_model_mean"])
                         for r in sweep_rows if r["width"] == w and r["layout"] == name)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", color=color,
                    label=f"{name} width {w}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("samples per replica per step")
    ax.set_ylabel("bytes sent per rank per step (counted)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sweep.png"), dpi=100)


def bubble_plot(out, bubbles):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (stages, rows) in enumerate(sorted(bubbles.items())):
        m = [r[0] for r in rows]
        ax.plot(m, [r[2] for r in rows], "-o", color=f"C{i}", label=f"P={stages} measured")
        ax.plot(m, [r[3] for r in rows], "--", color=f"C{i}", label=f"P={stages} (P-1)/(M+P-1)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("micro-batches M")
    ax.set_ylabel("idle fraction of the step (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "bubble.png"), dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--out", default="bench/parallelism/results")
    p.add_argument("--mpirun-args", default="", help="extra mpirun arguments")
    p.add_argument("--model", default="64-512-512-512-10",
                   help="4 Dense layers, so that 4 pipeline stages get one each")
    p.add_argument("--samples", type=int, default=8192)
    p.add_argument("--test-samples", type=int, default=2048)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--micro-batches", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--sweep-widths", type=int, nargs="*", default=[128, 256, 512, 1024])
    p.add_argument("--sweep-batches", type=int, nargs="*", default=[16, 64, 256, 1024])
    p.add_argument("--sweep-steps", type=int, default=4)
    p.add_argument("--skip-bubble", action="store_true")
    args = p.parse_args()

    os.makedirs(args.out, exist_ok=True)
    jdir = os.path.join(args.out, "json")
    os.makedirs(jdir, exist_ok=True)
    args.dataset = os.path.join(args.out, "synth.h5")
    if not os.path.exists(args.dataset):
        run(mpirun(args, 1) + [
            os.path.join(args.build, "apps/ringdp-data/ringdp-data"), "synth", "--samples",
            str(args.samples), "--test-samples", str(args.test_samples), "--features",
            str(args.features), "--classes", str(args.classes), "--seed", "7", "--hidden", "64",
            "--type", "float32", "--out", args.dataset])

    rows = []
    for name, ranks, extra in LAYOUTS:
        res = bench(args, name, ranks, extra, os.path.join(jdir, f"{name}.json"), args.model,
                    args.batch, args.epochs)
        rows.append(figures(res))
    keys = [k for k in rows[0] if k not in ("accuracy", "train_loss")]
    write_csv(os.path.join(args.out, "layouts.csv"), rows, keys)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table(rows))

    sweep_rows = sweep(args, jdir)
    write_csv(os.path.join(args.out, "sweep.csv"), sweep_rows, list(sweep_rows[0].keys()))

    bubbles = {}
    if not args.skip_bubble:
        for stages in (2, 4):
            text = run(mpirun(args, stages) + [
                os.path.join(args.build, "bench/parallelism/bench-pipeline-bubble"), "--width",
                "512", "--batch", "256", "--micro-batches", "1", "2", "4", "8", "16", "--steps",
                "10"])
            with open(os.path.join(args.out, f"bubble-np{stages}.txt"), "w") as f:
                f.write(text)
            bubbles[stages] = [[float(v.rstrip("%")) for v in line.split()[:4]]
                               for line in text.splitlines() if line.strip()[:1].isdigit()]
    plots(args.out, rows, sweep_rows)
    if bubbles:
        bubble_plot(args.out, bubbles)
    os.remove(args.dataset)
    print(table(rows))


if __name__ == "__main__":
    main()
