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
# PS_MAX_BYTES (16777216), FACTOR (4), ITERS (3), WARMUP (1), TRAIN_SAMPLES (8192),
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
ITERS=${ITERS:-3}
WARMUP=${WARMUP:-1}
TRAIN_SAMPLES=${TRAIN_SAMPLES:-8192}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-1}
TRAIN_BATCH=${TRAIN_BATCH:-64}
TRAIN_MODEL=${TRAIN_MODEL:-784-512-256-10}
SEED=${SEED:-1}
OUT=${OUT:-$root/bench/results/cluster-$(hostname -s)-$(date -u +%Y-%m-%d)}
PY=/usr/bin/python3

die() { echo "scaling.sh: error: $*" >&2; exit 1; }
say() { echo "== $(date -u +%H:%M:%S) $*"; }

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
  echo "sizes: $MIN_BYTES..$MAX_BYTES bytes, factor $FACTOR (ps up to $PS_MAX_BYTES); iters $ITERS, warmup $WARMUP"
} >"$OUT/run-info.txt"
cat "$OUT/run-info.txt"

# Synthetic training data, made once on shared memory (the data set is not what is measured).
data=$OUT/raw/synth.h5
if [ ! -f "$data" ]; then
  say "synthetic data: $TRAIN_SAMPLES samples"
  "$data_tool" synth --samples "$TRAIN_SAMPLES" --features "${TRAIN_MODEL%%-*}" \
    --classes "${TRAIN_MODEL##*-}" --seed "$SEED" --out "$data" >"$OUT/raw/synth.log" 2>&1 ||
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
  say "N=$n: ringdp-bench ring,rd,mpi,auto"
  RDP_MPIRUN_ARGS="$tuning_args" "$here/mpirun.sh" "$n" "$bench" --min-bytes "$MIN_BYTES" \
    --max-bytes "$MAX_BYTES" --factor "$FACTOR" --iters "$ITERS" --warmup "$WARMUP" \
    --algos ring,rd,mpi,auto --csv "$OUT/bench-n$n.csv" | tee "$OUT/bench-n$n.txt"
  say "N=$n: ringdp-bench ps (to $PS_MAX_BYTES bytes)"
  "$here/mpirun.sh" "$n" "$bench" --min-bytes "$MIN_BYTES" --max-bytes "$PS_MAX_BYTES" \
    --factor "$FACTOR" --iters "$ITERS" --warmup "$WARMUP" --algos ps,ring \
    --csv "$OUT/bench-ps-n$n.csv" | tee "$OUT/bench-ps-n$n.txt"

  for where in cluster shm; do
    say "N=$n: ringdp-train on $where"
    ckpt=$OUT/raw/ckpt-$where-n$n
    rm -rf "$ckpt"
    args=(--data "$data" --model "$TRAIN_MODEL" --epochs "$TRAIN_EPOCHS" --batch "$TRAIN_BATCH"
          --algo ring --seed "$SEED" --checkpoint-dir "$ckpt")
    if [ "$where" = cluster ]; then
      "$here/mpirun.sh" "$n" "$train" "${args[@]}" --metrics "$OUT/train-n$n.csv" \
        --timeline "$OUT/raw/timeline-n$n.json" 2>&1 | tee "$OUT/train-n$n.txt"
    else
      mpirun -np "$n" --oversubscribe --bind-to none "$train" "${args[@]}" \
        --metrics "$OUT/raw/train-shm-n$n.csv" >"$OUT/raw/train-shm-n$n.txt" 2>&1
    fi
  done
  # Same seed, rank count and algorithm: the final parameters must not depend on the network.
  "$PY" "$here/compare_checkpoints.py" "$OUT/raw/ckpt-cluster-n$n" "$OUT/raw/ckpt-shm-n$n" \
    | tee "$OUT/bitwise-n$n.txt" || true
done
"$here/emulate.sh" down

say "model fit and plots"
"$PY" "$root/bench/model.py" --pingpong "$OUT/pingpong.csv" --rate "$RATE" \
  --bench "$OUT"/bench-n*.csv "$OUT"/bench-ps-n*.csv --out "$OUT" | tee "$OUT/model.txt"
"$PY" "$here/plot_training.py" "$OUT" | tee "$OUT/training.txt"
if [ -f "$root/bench/plot.py" ]; then
  "$PY" "$root/bench/plot.py" "$OUT" || echo "scaling.sh: warning: bench/plot.py failed"
fi
say "done: $OUT"
