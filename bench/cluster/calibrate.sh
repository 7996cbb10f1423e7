#!/usr/bin/env bash
# Calibration of the emulated network, with plain MPI (ringdp-pingpong), no ringdp collective:
#
#   sudo bench/cluster/calibrate.sh [BUILD_DIR]
#
# At N = 2: ping-pong, full-duplex exchange and local reduction (alpha, beta, gamma for
# bench/model.py). At every N in NS: the ring's traffic pattern (2(N-1) neighbour exchanges),
# which shows whether the links or the shared CPU limit as hosts are added.
# Knobs: RATE (200mbit), NS ("2 4 8"), RING_MIN (4K), RING_MAX (8M), OUT (results dir).
# Writes pingpong.csv, ring-n<N>.csv (+ .txt) and the model's table and plot in OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
RATE=${RATE:-200mbit}
NS=${NS:-"2 4 8"}
RING_MIN=${RING_MIN:-4K}
RING_MAX=${RING_MAX:-8M}
OUT=${OUT:-$root/bench/results/cluster-$(hostname -s)-$(date -u +%Y-%m-%d)}
pingpong=$build/bench/cluster/ringdp-pingpong
[ "$(id -u)" -eq 0 ] || { echo "calibrate.sh: error: must run as root" >&2; exit 1; }
[ -x "$pingpong" ] || { echo "calibrate.sh: error: $pingpong not built" >&2; exit 1; }
mkdir -p "$OUT"
# The machine's load matters: every emulated host shares its cores (and other work may too).
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(hostname -s), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel: $(uname -r); mpi: $(mpirun --version 2>&1 | head -1)"
  echo "rate per link and direction: $RATE (tbf); no emulated delay"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/calibration-info.txt"
trap '"$here/emulate.sh" down >/dev/null 2>&1 || true' EXIT

for n in $NS; do
  echo "== $(date -u +%H:%M:%S) N=$n at $RATE"
  "$here/emulate.sh" up "$n" "$RATE" >/dev/null
  if [ "$n" -eq 2 ]; then
    "$here/mpirun.sh" 2 "$pingpong" --modes pingpong,exchange,reduce --max-bytes 16M \
      --seconds 0.3 --csv "$OUT/pingpong.csv" | tee "$OUT/pingpong.txt"
  fi
  "$here/mpirun.sh" "$n" "$pingpong" --modes ring --min-bytes "$RING_MIN" --max-bytes "$RING_MAX" \
    --seconds 0.3 --csv "$OUT/ring-n$n.csv" | tee "$OUT/ring-n$n.txt"
done
"$here/emulate.sh" down
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/calibration-info.txt"
/usr/bin/python3 "$root/bench/model.py" --pingpong "$OUT/pingpong.csv" --rate "$RATE" --out "$OUT" \
  | tee "$OUT/model.txt"
