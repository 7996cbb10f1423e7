#!/usr/bin/env bash
# Scaling on the emulated cluster: allreduce time and training throughput at N = 2, 4, 8
# hosts, one rank per host, every link shaped to the same rate.
#
#   sudo bench/cluster/scaling.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# 1. calibrate.sh (plain-MPI ping-pong and ring pattern: alpha, beta = the link's rate B),
#    unless OUT already holds pingpong.csv.
# For each N (emulate.sh up N RATE):
# 2. The ring's segment: the ring alone at 1 and 16 MiB with each of SEGMENTS (the first is
#    the built-in default, kept unless another is 5% faster in total).
#    ringdp-bench --tune=FILE --segment <that>: ring, rd and mpi at every size; the fastest per
#    size goes into OUT/tuning.txt with the segment (rules for N; other N's rules kept):
#    what auto, and the ring, learn on this network.
# 3. ringdp-bench ring, rd, mpi, auto from MIN_BYTES to MAX_BYTES with RINGDP_TUNING=tuning.txt
#    (the table), then ps, which is N times slower, up to PS_MAX_BYTES next to a reference ring
#    (also with the tuning file: the ring runs with the tuned segment in both).
# 4. ringdp-train on synthetic data with --algo ring and TRAIN_ALGO2 (both with the tuning
#    file), on the cluster and on shared memory (plain mpirun, same seed, rank count,
#    algorithm): bit_identity.sh compares the final checkpoints.
# 5. Flatness, with the load matched: the ring alone at FLAT_BYTES, alternating between the
#    N of FLAT_NS for FLAT_ROUNDS rounds (other work on the machine changes over minutes, so
#    N = 4 and N = 8 measured ten minutes apart can differ by the load alone): flat.txt.
# 6. Several ranks per host: for each H of HIER_HOSTS hosts with HIER_PER_HOST ranks each,
#    placed by slot (a host's ranks consecutive) and by node (round-robin), ringdp-bench
#    ring, hier and auto from HIER_MIN_BYTES to HIER_MAX_BYTES with HIER_SEGMENT-byte ring
#    segments: the flat ring against shm inside hosts + a ring between them
#    (hier-h<H>-<placement>.csv), then hier_report.py: each against the bound 2(H-1)/H x S / B
#    and the issue's criteria (hier.txt, hier-vs-ring.png).
# Then bench/model.py (fit, criteria, projection), bench/plot.py and plot_training.py.
# Results: OUT (default bench/results/cluster-<host>-<date>/): CSV, logs, PNG, and load.txt,
# the machine's load average at every step (the emulated hosts share the cores with
# anything else running). Always tears the cluster down, also on error or Ctrl-C.
#
# Knobs (environment): RATE (200mbit), NS ("2 4 8"), MIN_BYTES (65536), MAX_BYTES (67108864),
# PS_MAX_BYTES (16777216), FACTOR (4); timed calls per point: enough for POINT_SECONDS (0.5)
# but at least MIN_ITERS (3; TUNE_MIN_ITERS (2) for --tune), in REPS (3) interleaved blocks,
# after WARMUP (0) untimed ones (the bench's checked call already warms up): small messages,
# whose times the shared CPU scatters, get many calls, 64 MiB ones a few; TRAIN_SAMPLES
# (8192), TRAIN_EPOCHS (1), TRAIN_BATCH (64), TRAIN_MODEL (784-512-256-10), TRAIN_ALGO2 (rd),
# TRAIN_REPEATS (3: runs per algorithm and N on the cluster, the first also on shared memory),
# SEGMENTS ("131072 32768"), FLAT_NS ("4 8"), FLAT_BYTES (16M), FLAT_ROUNDS (3), SEED (1),
# HIER_HOSTS ("2 4"), HIER_PER_HOST (2), HIER_MIN_BYTES (65536), HIER_MAX_BYTES (16777216),
# HIER_SEGMENT (32768), OUT, STEPS ("segment tune bench ps train flat hier": a subset re-runs
# only those parts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

RATE=${RATE:-200mbit}
NS=${NS:-"2 4 8"}
MIN_BYTES=${MIN_BYTES:-65536}
MAX_BYTES=${MAX_BYTES:-67108864}
PS_MAX_BYTES=${PS_MAX_BYTES:-16777216}
FACTOR=${FACTOR:-4}
POINT_SECONDS=${POINT_SECONDS:-0.5}
MIN_ITERS=${MIN_ITERS:-3}
TUNE_MIN_ITERS=${TUNE_MIN_ITERS:-2}
REPS=${REPS:-3}
WARMUP=${WARMUP:-0}
TRAIN_SAMPLES=${TRAIN_SAMPLES:-8192}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-1}
TRAIN_BATCH=${TRAIN_BATCH:-64}
TRAIN_MODEL=${TRAIN_MODEL:-784-512-256-10}
TRAIN_ALGO2=${TRAIN_ALGO2:-rd}
TRAIN_REPEATS=${TRAIN_REPEATS:-3}
SEED=${SEED:-1}
SEGMENTS=${SEGMENTS:-"131072 32768"}
FLAT_NS=${FLAT_NS:-"4 8"}
FLAT_BYTES=${FLAT_BYTES:-16M}
FLAT_ROUNDS=${FLAT_ROUNDS:-3}
HIER_HOSTS=${HIER_HOSTS:-"2 4"}
HIER_PER_HOST=${HIER_PER_HOST:-2}
HIER_MIN_BYTES=${HIER_MIN_BYTES:-65536}
HIER_MAX_BYTES=${HIER_MAX_BYTES:-16777216}
HIER_SEGMENT=${HIER_SEGMENT:-32768}
STEPS=${STEPS:-"segment tune bench ps train flat hier"}
OUT=${OUT:-$root/bench/results/cluster-$(hostname -s)-$(date -u +%Y-%m-%d)}
PY=/usr/bin/python3

die() { echo "scaling.sh: error: $*" >&2; exit 1; }
failures=()
say() { echo "== $(date -u +%H:%M:%S) $*"; }
wants() { [[ " $STEPS " == *" $1 "* ]]; }
# The load average next to every step: other work on the machine shows up as latency.
load() { echo "$(date -u +%H:%M:%S) $1: load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"; }
# A failed step is recorded and the run goes on: one bad point must not cost the others.
step() {
  local name=$1; shift
  load "start $name"
  local started=$SECONDS
  if ! "$@"; then
    echo "scaling.sh: FAILED: $name" >&2
    failures+=("$name")
  fi
  load "end   $name ($((SECONDS - started)) s)"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it brings up the emulated cluster)"
bench=$build/apps/ringdp-bench/ringdp-bench
train=$build/apps/ringdp-train/ringdp-train
data_tool=$build/apps/ringdp-data/ringdp-data
pingpong=$build/bench/cluster/ringdp-pingpong
for exe in "$bench" "$train" "$data_tool" "$pingpong"; do
  [ -x "$exe" ] || die "$exe not built (cmake --build $build)"
done

mkdir -p "$OUT/raw"
trap '"$here/emulate.sh" down >/dev/null 2>&1 || true' EXIT
source "$root/scripts/env.sh"   # root + oversubscription variables for the shared-memory runs

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(hostname -s), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "mpi: $(mpirun --version 2>&1 | head -1)"
  echo "ringdp: $(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "rate per link and direction: $RATE (tbf); no emulated delay; all hosts share the cores"
  echo "N: $NS; steps: $STEPS"
  echo "sizes: $MIN_BYTES..$MAX_BYTES bytes, factor $FACTOR (ps up to $PS_MAX_BYTES); timed calls for $POINT_SECONDS s per point, >= $MIN_ITERS (tune: >= $TUNE_MIN_ITERS), in $REPS blocks, after $WARMUP warm-up"
  echo "train: $TRAIN_SAMPLES samples, model $TRAIN_MODEL, batch $TRAIN_BATCH/rank, $TRAIN_EPOCHS epoch(s), seed $SEED, algorithms ring and $TRAIN_ALGO2"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$OUT/run-info.txt"
cat "$OUT/run-info.txt"

# Synthetic training data, made once on shared memory (the data set is not what is measured).
data=$OUT/raw/synth.h5
if wants train && [ ! -f "$data" ]; then
  say "synthetic data: $TRAIN_SAMPLES samples"
  "$data_tool" synth --samples "$TRAIN_SAMPLES" --features "${TRAIN_MODEL%%-*}" \
    --classes "${TRAIN_MODEL##*-}" --test-samples $((TRAIN_SAMPLES / 8)) --seed "$SEED" \
    --out "$data" >"$OUT/raw/synth.log" 2>&1 ||
    die "ringdp-data synth failed (see $OUT/raw/synth.log)"
fi

# The network's own figures first (plain MPI): alpha, beta, gamma and the ring pattern.
if [ ! -f "$OUT/pingpong.csv" ]; then
  say "calibration (calibrate.sh)"
  load "start calibration"
  OUT=$OUT NS=$NS RATE=$RATE "$here/calibrate.sh" "$build" >"$OUT/raw/calibrate.log" 2>&1 ||
    die "calibration failed (see $OUT/raw/calibrate.log)"
  load "end   calibration"
fi

tuning=$OUT/tuning.txt
sizes=(--min-bytes "$MIN_BYTES" --factor "$FACTOR" --warmup "$WARMUP" --iters 0
       --point-seconds "$POINT_SECONDS")
for n in $NS; do
  say "N=$n: emulate.sh up $n $RATE"
  "$here/emulate.sh" up "$n" "$RATE" >/dev/null

  segment_args=()
  if wants segment; then
    # Over TCP a segment above Open MPI's eager limit costs a rendezvous per segment: the
    # ring's segment is worth measuring on each network (the tuning file carries it).
    for seg in $SEGMENTS; do
      say "N=$n: ring with $seg-byte segments at 1 and 16 MiB"
      step "segment $seg N=$n" "$here/mpirun.sh" "$n" "$bench" --min-bytes 1M --max-bytes 16M \
        --factor 16 --iters 3 --reps 3 --warmup 0 --algos ring --segment "$seg" \
        --csv "$OUT/segment-$seg-n$n.csv" > >(tee "$OUT/segment-$seg-n$n.txt") 2>&1
    done
    best=$("$PY" - "$OUT" "$n" $SEGMENTS <<'PY'
import csv, os, sys
out, n, segs = sys.argv[1], sys.argv[2], sys.argv[3:]
total = {}
for s in segs:
    path = os.path.join(out, f"segment-{s}-n{n}.csv")
    if os.path.exists(path):
        total[s] = sum(float(r["time_us"]) for r in csv.DictReader(open(path)))
best = segs[0] if segs[0] in total else min(total, key=total.get, default="")
for s, t in total.items():
    if t < total.get(best, float("inf")) * 0.95:
        best = s
print(best)
PY
)
    if [ -n "$best" ]; then
      echo "N=$n: ring segment $best bytes (candidates $SEGMENTS)" | tee -a "$OUT/segments.txt"
      segment_args=(--segment "$best")
    fi
  fi
  if wants tune; then
    # Auto learns this network's choices, not those of shared memory.
    say "N=$n: ringdp-bench --tune (ring, rd, mpi) ${segment_args[*]}"
    # --tune=FILE, not --tune FILE: Open MPI's mpirun has a --tune option of its own, which it
    # finds anywhere on its command line, also after the program, unless it is one word.
    step "tune N=$n" "$here/mpirun.sh" "$n" "$bench" "${sizes[@]}" --min-iters "$TUNE_MIN_ITERS" \
      --reps 2 --max-bytes "$MAX_BYTES" --algos ring,rd,mpi "${segment_args[@]}" \
      --tune="$tuning" --csv "$OUT/tune-n$n.csv" > >(tee "$OUT/tune-n$n.txt") 2>&1
  fi
  tuning_args=""
  [ -f "$tuning" ] && tuning_args="-x RINGDP_TUNING=$tuning"
  if wants bench; then
    [ -f "$tuning" ] || echo "scaling.sh: warning: no $tuning: auto runs its built-in choice"
    say "N=$n: ringdp-bench ring,rd,mpi,auto (auto with RINGDP_TUNING)"
    step "bench N=$n" env RDP_MPIRUN_ARGS="$tuning_args" "$here/mpirun.sh" "$n" "$bench" \
      "${sizes[@]}" --min-iters "$MIN_ITERS" --reps "$REPS" --max-bytes "$MAX_BYTES" \
      --algos ring,rd,mpi,auto \
      --csv "$OUT/bench-n$n.csv" --json "$OUT/bench-n$n.json" > >(tee "$OUT/bench-n$n.txt") 2>&1
  fi
  if wants ps; then
    say "N=$n: ringdp-bench ps (to $PS_MAX_BYTES bytes, next to a reference ring)"
    step "bench ps N=$n" env RDP_MPIRUN_ARGS="$tuning_args" "$here/mpirun.sh" "$n" "$bench" \
      "${sizes[@]}" --min-iters "$MIN_ITERS" --reps "$REPS" \
      --max-bytes "$PS_MAX_BYTES" --algos ps,ring --csv "$OUT/bench-ps-n$n.csv" \
      > >(tee "$OUT/bench-ps-n$n.txt") 2>&1
  fi
  if wants train; then
    for algo in ring "$TRAIN_ALGO2"; do
      say "N=$n: ringdp-train --algo $algo on the cluster and on shared memory"
      # With the tuning file: the ring runs with this network's segment, as auto would.
      step "train $algo N=$n" env OUT="$OUT" SEED="$SEED" TRAIN_EPOCHS="$TRAIN_EPOCHS" \
        TRAIN_BATCH="$TRAIN_BATCH" TRAIN_MODEL="$TRAIN_MODEL" RINGDP_TUNING="${tuning_args:+$tuning}" \
        "$here/bit_identity.sh" "$build" "$data" "$n" "$algo"
      # More runs on the cluster alone: other work on the machine moves single runs by 2x.
      for r in $(seq 2 "$TRAIN_REPEATS"); do
        step "train $algo N=$n run $r" env RDP_MPIRUN_ARGS="$tuning_args" "$here/mpirun.sh" "$n" \
          "$train" --data "$data" --model "$TRAIN_MODEL" --epochs "$TRAIN_EPOCHS" \
          --batch "$TRAIN_BATCH" --algo "$algo" --seed "$SEED" --progress off \
          --metrics "$OUT/train-$algo-n$n-r$r.csv" >"$OUT/raw/train-$algo-n$n-r$r.txt" 2>&1
      done
    done
  fi
done
if wants flat; then
  tuning_args=""
  [ -f "$tuning" ] && tuning_args="-x RINGDP_TUNING=$tuning"
  for round in $(seq 1 "$FLAT_ROUNDS"); do
    for n in $FLAT_NS; do
      "$here/emulate.sh" up "$n" "$RATE" >/dev/null
      say "flatness round $round: ring at $FLAT_BYTES, N=$n"
      step "flat round $round N=$n" env RDP_MPIRUN_ARGS="$tuning_args" "$here/mpirun.sh" "$n" \
        "$bench" --min-bytes "$FLAT_BYTES" --max-bytes "$FLAT_BYTES" --iters 3 --reps 3 \
        --warmup 0 --algos ring --csv "$OUT/raw/flat-n$n-r$round.csv" >/dev/null 2>&1
    done
  done
  "$PY" - "$OUT" $FLAT_NS <<'PY' | tee "$OUT/flat.txt"
import csv, glob, os, re, statistics, sys
out, ns = sys.argv[1], [int(n) for n in sys.argv[2:]]
times = {n: [] for n in ns}
for path in sorted(glob.glob(os.path.join(out, "raw", "flat-n*-r*.csv"))):
    n = int(re.search(r"flat-n(\d+)-r", path).group(1))
    if n in times:
        times[n] += [float(r["time_us"]) * 1e-6 for r in csv.DictReader(open(path))]
print("ring alone, N alternating round by round (median of each round's 3 calls):")
for n in ns:
    print(f"  N={n}: " + ", ".join(f"{t:.3f} s" for t in times[n])
          + (f"; median {statistics.median(times[n]):.3f} s" if times[n] else ""))
if len(ns) == 2 and times[ns[0]] and times[ns[1]]:
    ratio = statistics.median(times[ns[1]]) / statistics.median(times[ns[0]])
    print(f"  time(N={ns[1]}) / time(N={ns[0]}) = {ratio:.2f}")
PY
fi
if wants hier; then
  # The flat ring and hier on the same hosts, the same run: with the ranks of a host
  # consecutive (slot) the flat ring crosses each link once per direction, like hier; placed
  # round-robin (node) every hop of the flat ring crosses a link, while hier does not care.
  for h in $HIER_HOSTS; do
    "$here/emulate.sh" up "$h" "$RATE" >/dev/null
    for placement in slot node; do
      name=hier-h$h-$placement
      say "$h hosts x $HIER_PER_HOST ranks, placed by $placement: ring, hier, auto"
      step "$name" env RDP_RANKS_PER_HOST="$HIER_PER_HOST" RDP_MAP_BY="$placement" \
        "$here/mpirun.sh" $((h * HIER_PER_HOST)) "$bench" --min-bytes "$HIER_MIN_BYTES" \
        --max-bytes "$HIER_MAX_BYTES" --factor "$FACTOR" --warmup "$WARMUP" --iters 0 \
        --point-seconds "$POINT_SECONDS" --min-iters "$MIN_ITERS" --reps "$REPS" --no-floor \
        --algos ring,hier,auto --segment "$HIER_SEGMENT" --csv "$OUT/$name.csv" \
        --json "$OUT/$name.json" > >(tee "$OUT/$name.txt") 2>&1
    done
  done
  step "hier report" "$PY" "$here/hier_report.py" "$OUT" --rate "$RATE" \
    > >(tee "$OUT/hier.txt") 2>&1
fi
"$here/emulate.sh" down
"$here/emulate.sh" status | tee "$OUT/raw/status-after-down.txt"

say "model fit and plots"
shopt -s nullglob
benches=("$OUT"/bench-n*.csv "$OUT"/bench-ps-n*.csv)
if [ ${#benches[@]} -gt 0 ]; then
  step "model" "$PY" "$root/bench/model.py" --pingpong "$OUT/pingpong.csv" --rate "$RATE" \
    --bench "${benches[@]}" --out "$OUT" > >(tee "$OUT/model.txt") 2>&1
  step "plot" "$PY" "$root/bench/plot.py" "$OUT" --glob 'bench-n*.csv' --sizes 1M,16M
fi
trains=("$OUT"/train-*-n*.csv)
if [ ${#trains[@]} -gt 0 ]; then
  step "training plot" "$PY" "$here/plot_training.py" "$OUT" > >(tee "$OUT/training.txt") 2>&1
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/run-info.txt"
if [ ${#failures[@]} -ne 0 ]; then
  say "done with ${#failures[@]} failed step(s): ${failures[*]}"
  exit 1
fi
say "done: $OUT"
