#!/usr/bin/env bash
# The same ringdp-train run on the emulated cluster and on shared memory must end with
# bit-identical parameters (and optimizer state): the network may change the timing, never
# the bits.
#
#   sudo bench/cluster/bit_identity.sh BUILD_DIR DATA.h5 N ALGO
#
# Runs ringdp-train --algo ALGO at N ranks twice with the same seed and data: once with one
# rank per emulated host (mpirun.sh; brings up N hosts at RATE if fewer exist, and then
# takes them down again), once as plain mpirun on this machine's shared memory; then
# compare_checkpoints.py compares every numeric dataset of the two final checkpoints.
# DATA.h5 is made with ringdp-data synth when missing. Exit 0 when bit-identical.
# Writes to OUT (default: bench/results/bit-identity): train-ALGO-nN.{txt,csv} (the
# cluster run's summary and metrics), bitwise-ALGO-nN.txt, raw/ (checkpoints, shm run).
# Knobs: RATE (200mbit), SEED (1), TRAIN_EPOCHS (1), TRAIN_BATCH (64),
# TRAIN_MODEL (784-512-256-10), TRAIN_SAMPLES (8192, for a new DATA.h5), RINGDP_TUNING (a
# tuning file both runs read, e.g. the one scaling.sh measured: it sets the ring's segment;
# segments change the messages, never the order in which elements are summed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -eq 4 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
build=$(cd "$1" && pwd)
data=$2 n=$3 algo=$4
RATE=${RATE:-200mbit}
SEED=${SEED:-1}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-1}
TRAIN_BATCH=${TRAIN_BATCH:-64}
TRAIN_MODEL=${TRAIN_MODEL:-784-512-256-10}
TRAIN_SAMPLES=${TRAIN_SAMPLES:-8192}
OUT=${OUT:-$root/bench/results/bit-identity}
PREFIX=${RDP_PREFIX:-rdp}
train=$build/apps/ringdp-train/ringdp-train
die() { echo "bit_identity.sh: error: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (the emulated cluster needs it)"
[ -x "$train" ] || die "$train not built"
mkdir -p "$OUT/raw"

if [ ! -f "$data" ]; then
  "$build/apps/ringdp-data/ringdp-data" synth --samples "$TRAIN_SAMPLES" \
    --features "${TRAIN_MODEL%%-*}" --classes "${TRAIN_MODEL##*-}" \
    --test-samples $((TRAIN_SAMPLES / 8)) --seed "$SEED" --out "$data" >/dev/null ||
    die "ringdp-data synth failed"
fi

# Bring up the hosts only when they are not there, and then take them down again.
hosts=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -cE "^${PREFIX}-n[0-9]+$" || true)
if [ "$hosts" -lt "$n" ]; then
  trap '"$here/emulate.sh" down >/dev/null 2>&1 || true' EXIT
  "$here/emulate.sh" up "$n" "$RATE" >/dev/null
fi

args=(--data "$data" --model "$TRAIN_MODEL" --epochs "$TRAIN_EPOCHS" --batch "$TRAIN_BATCH"
      --algo "$algo" --seed "$SEED" --progress off)
export_tuning=()
if [ -n "${RINGDP_TUNING:-}" ]; then
  export RINGDP_TUNING
  export_tuning=(-x RINGDP_TUNING)
fi
tag=$algo-n$n
rm -rf "$OUT/raw/ckpt-cluster-$tag" "$OUT/raw/ckpt-shm-$tag"
echo "# $(date -u +%H:%M:%S) cluster run, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "RINGDP_TUNING=${RINGDP_TUNING:-unset}" >"$OUT/train-$tag.txt"
RDP_MPIRUN_ARGS="${export_tuning[*]}" \
  "$here/mpirun.sh" "$n" "$train" "${args[@]}" --checkpoint-dir "$OUT/raw/ckpt-cluster-$tag" \
  --metrics "$OUT/train-$tag.csv" >>"$OUT/train-$tag.txt" 2>&1 ||
  { cat "$OUT/train-$tag.txt"; die "ringdp-train on the cluster failed"; }
echo "# $(date -u +%H:%M:%S) shared-memory run, load average $(cut -d' ' -f1-3 /proc/loadavg)" \
  >"$OUT/raw/train-shm-$tag.txt"
(source "$root/scripts/env.sh" && mpirun -np "$n" --oversubscribe --bind-to none \
  "${export_tuning[@]}" "$train" \
  "${args[@]}" --checkpoint-dir "$OUT/raw/ckpt-shm-$tag" --metrics "$OUT/raw/train-shm-$tag.csv") \
  >>"$OUT/raw/train-shm-$tag.txt" 2>&1 ||
  { cat "$OUT/raw/train-shm-$tag.txt"; die "ringdp-train on shared memory failed"; }
grep -E "^(done|  time/rank)" "$OUT/train-$tag.txt" || true
/usr/bin/python3 "$here/compare_checkpoints.py" "$OUT/raw/ckpt-cluster-$tag" "$OUT/raw/ckpt-shm-$tag" \
  | tee "$OUT/bitwise-$tag.txt"
exit "${PIPESTATUS[0]}"
