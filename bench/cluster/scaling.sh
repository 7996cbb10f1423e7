#!/usr/bin/env bash
# Scaling on the emulated cluster: allreduce time and training throughput at N = 2, 4, 8
# hosts, one rank per host, every link shaped to the same rate.
#
#   sudo bench/cluster/scaling.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# First calibrate.sh (plain-MPI ping-pong and ring pattern). For each N: emulate.sh up N RATE;
# ringdp-bench
# (ring, rd, mpi, auto from 64 KiB to 64 MiB, ps to PS_MAX_BYTES because it is n times slower);
# a short ringdp-train run on synthetic data, repeated on shared memory (plain mpirun, same
# seed and rank count) to check that the final parameters are bit-identical. Then
# bench/model.py fits and plots the model against the measurements.
# Results: bench/results/cluster-<host>-<date>/ (CSV, logs, PNG). Always tears down.
#
# Knobs (environment): RATE (200mbit), NS ("2 4 8"), MIN_BYTES (65536), MAX_BYTES (67108864),
# PS_MAX_BYTES (16777216), FACTOR (4), ITERS (1) x REPS (3) timed calls, WARMUP (1),
# TRAIN_SAMPLES (8192),
# TRAIN_EPOCHS (1), TRAIN_BATCH (64), TRAIN_MODEL (784-512-256-10), SEED (1), OUT (results dir).
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
ITERS=${ITERS:-1}
REPS=${REPS:-3}
WARMUP=${WARMUP:-1}
TRAIN_SAMPLES=${TRAIN_SAMPLES:-8192}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-1}
TRAIN_BATCH=${TRAIN_BATCH:-64}
TRAIN_MODEL=${TRAIN_MODEL:-784-512-256-10}
SEED=${SEED:-1}
OUT=${OUT:-$root/bench/results/cluster-$(hostname -s)-$(date -u +%Y-%m-%d)}
PY=/usr/bin/python3

die() { echo "scaling.sh: error: $*" >&2; exit 1; }
failures=()
# A failed step is recorded and the run goes on: one bad point must not cost the others.
step() {
  local name=$1; shift
  if ! "$@"; then
    echo "scaling.sh: FAILED: $name" >&2
    failures+=("$name")
  fi
}
say() { echo "== $(date -u +%H:%M:%S) $*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it brings up the emulated cluster)"
bench=$build/apps/ringdp-bench/ringdp-bench
train=$build/apps/ringdp-train/ringdp-train
data_tool=$build/apps/ringdp-data/ringdp-data
pingpong=$build/bench/cluster/ringdp-pingpong
for exe in "$bench" "$pingpong"; do
  [ -x "$exe" ] || die "$exe not built (cmake --build $build)"
done
with_train=1
if [ ! -x "$train" ] || [ ! -x "$data_tool" ]; then
  echo "scaling.sh: warning: ringdp-train or ringdp-data not built: allreduce only, no training runs"
  with_train=0
fi

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
  echo "sizes: $MIN_BYTES..$MAX_BYTES bytes, factor $FACTOR (ps up to $PS_MAX_BYTES); $ITERS iters x $REPS reps, warmup $WARMUP"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/run-info.txt"
cat "$OUT/run-info.txt"

# Synthetic training data, made once on shared memory (the data set is not what is measured).
data=$OUT/raw/synth.h5
if [ "$with_train" = 1 ] && [ ! -f "$data" ]; then
  say "synthetic data: $TRAIN_SAMPLES samples"
  "$data_tool" synth --samples "$TRAIN_SAMPLES" --features "${TRAIN_MODEL%%-*}" \
    --classes "${TRAIN_MODEL##*-}" --test-samples $((TRAIN_SAMPLES / 8)) --seed "$SEED" \
    --out "$data" >"$OUT/raw/synth.log" 2>&1 ||
    die "ringdp-data synth failed (see $OUT/raw/synth.log)"
fi

# The network's own figures first (plain MPI): alpha, beta, gamma and the ring pattern.
if [ ! -f "$OUT/pingpong.csv" ]; then
  say "calibration (calibrate.sh)"
  OUT=$OUT NS=$NS RATE=$RATE "$here/calibrate.sh" "$build" >"$OUT/raw/calibrate.log" 2>&1 ||
    die "calibration failed (see $OUT/raw/calibrate.log)"
fi

has_tune=0
"$bench" --help 2>/dev/null | grep -q -- '--tune' && has_tune=1

for n in $NS; do
  say "N=$n: emulate.sh up $n $RATE"
  "$here/emulate.sh" up "$n" "$RATE" >/dev/null
  tuning_args=""
  if [ "$has_tune" = 1 ]; then
    # Let auto learn this network's thresholds, not those of shared memory.
    say "N=$n: ringdp-bench --tune"
    "$here/mpirun.sh" "$n" "$bench" --tune "$OUT/tuning-n$n.txt" >"$OUT/raw/tune-n$n.log" 2>&1 ||
      echo "scaling.sh: warning: --tune failed at N=$n (see raw/tune-n$n.log); auto keeps its defaults"
    [ -f "$OUT/tuning-n$n.txt" ] && tuning_args="-x RINGDP_TUNING=$OUT/tuning-n$n.txt"
  fi
  bench_args=(--min-bytes "$MIN_BYTES" --factor "$FACTOR" --iters "$ITERS" --reps "$REPS"
              --warmup "$WARMUP")
  say "N=$n: ringdp-bench ring,rd,mpi,auto"
  step "bench N=$n" env RDP_MPIRUN_ARGS="$tuning_args" "$here/mpirun.sh" "$n" "$bench" \
    "${bench_args[@]}" --max-bytes "$MAX_BYTES" --algos ring,rd,mpi,auto \
    --csv "$OUT/bench-n$n.csv" --json "$OUT/raw/bench-n$n.json" > >(tee "$OUT/bench-n$n.txt") 2>&1
  say "N=$n: ringdp-bench ps (to $PS_MAX_BYTES bytes, next to a reference ring)"
  step "bench ps N=$n" "$here/mpirun.sh" "$n" "$bench" "${bench_args[@]}" \
    --max-bytes "$PS_MAX_BYTES" --algos ps,ring --csv "$OUT/bench-ps-n$n.csv" \
    > >(tee "$OUT/bench-ps-n$n.txt") 2>&1

  if [ "$with_train" = 0 ]; then continue; fi
  train_args=(--data "$data" --model "$TRAIN_MODEL" --epochs "$TRAIN_EPOCHS" --batch "$TRAIN_BATCH"
              --algo ring --seed "$SEED")
  say "N=$n: ringdp-train on the cluster"
  rm -rf "$OUT/raw/ckpt-cluster-n$n" "$OUT/raw/ckpt-shm-n$n"
  step "train N=$n" "$here/mpirun.sh" "$n" "$train" "${train_args[@]}" \
    --checkpoint-dir "$OUT/raw/ckpt-cluster-n$n" --metrics "$OUT/train-n$n.csv" \
    --timeline "$OUT/raw/timeline-n$n.json" > >(tee "$OUT/train-n$n.txt") 2>&1
  say "N=$n: ringdp-train on shared memory (same seed, ranks, algorithm)"
  step "train shm N=$n" mpirun -np "$n" --oversubscribe --bind-to none "$train" "${train_args[@]}" \
    --checkpoint-dir "$OUT/raw/ckpt-shm-n$n" --metrics "$OUT/raw/train-shm-n$n.csv" \
    >"$OUT/raw/train-shm-n$n.txt" 2>&1
  # The final parameters must not depend on the network.
  step "bit-identical N=$n" "$PY" "$here/compare_checkpoints.py" "$OUT/raw/ckpt-cluster-n$n" \
    "$OUT/raw/ckpt-shm-n$n" > >(tee "$OUT/bitwise-n$n.txt") 2>&1
done
"$here/emulate.sh" down

say "model fit and plots"
shopt -s nullglob
step "model" "$PY" "$root/bench/model.py" --pingpong "$OUT/pingpong.csv" --rate "$RATE" \
  --bench "$OUT"/bench-n*.csv "$OUT"/bench-ps-n*.csv --out "$OUT" > >(tee "$OUT/model.txt") 2>&1
[ "$with_train" = 0 ] || step "training plot" "$PY" "$here/plot_training.py" "$OUT" > >(tee "$OUT/training.txt") 2>&1
if [ -f "$root/bench/plot.py" ]; then
  "$PY" "$root/bench/plot.py" "$OUT" || echo "scaling.sh: warning: bench/plot.py failed"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/run-info.txt"
if [ ${#failures[@]} -ne 0 ]; then
  say "done with ${#failures[@]} failed step(s): ${failures[*]}"
  exit 1
fi
say "done: $OUT"
