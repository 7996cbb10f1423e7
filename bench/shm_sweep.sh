#!/bin/sh
# The shared-memory measurements in one run, on this machine, 2 ranks (one per core):
#
#   1. ringdp-bench, every algorithm, ordinary buffers, 8 B .. 256 MiB, with the memory floor
#      measured in the same interleaved blocks:          allreduce-np2.{csv,json,txt}
#   2. the same on SharedBuffer memory (--shared): ring, mpi, shm, auto
#                                                       allreduce-np2-shared.{csv,json,txt}
#   3. 3 and 4 ranks (oversubscribed on 2 cores) up to 16 MiB
#                                                       allreduce-np{3,4}-oversubscribed.*
#   4. training (bench-train-throughput --solo: overlap, lockstep, ...), --algo ring and
#      --algo shm alternated for TRAIN_ROUNDS rounds     train-{ring,shm}-r<k>.{csv,txt}
#   5. the plots (bench/plot.py) and the criteria (bench/shm_report.py: shm-criteria.txt,
#      shm-vs-floor.png).
#
# usage: bench/shm_sweep.sh [-- extra ringdp-bench flags]
# environment: BUILD (build), OUT (bench/results/<host>-<date>-shm), MPIRUN (mpirun),
#   PYTHON (/usr/bin/python3), STEPS ("plain shared more train report"), TRAIN_ROUNDS (3),
#   TRAIN_STEPS (300).
# Give it the machine: absolute times on a loaded machine measure the load.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
host=$(hostname -s 2>/dev/null || hostname)
out=${OUT:-bench/results/$host-$(date -u +%Y-%m-%d)-shm}
mpirun=${MPIRUN:-mpirun}
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-"plain shared more train report"}
bench=$build/apps/ringdp-bench/ringdp-bench
[ "${1:-}" = "--" ] && shift
[ -x "$bench" ] || { echo "shm_sweep.sh: $bench not found; build first" >&2; exit 1; }
. scripts/env.sh
# Copy-in/copy-out shared memory for MPI's own transport, as the test suite and the other
# measurements run it (single-copy needs ptrace rights that containers lack).
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mkdir -p "$out"
status=0
wants() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }

# run NAME RANKS FLAGS...: one ringdp-bench run, its table and load next to the files.
run() {
  name=$1; ranks=$2; shift 2
  {
    echo "# load before: $(uptime)"
    rc=0
    $mpirun -np "$ranks" "$bench" --csv "$out/$name.csv" --json "$out/$name.json" "$@" || rc=$?
    echo "# load after: $(uptime)"
    echo "$rc" > "$out/.rc"
  } 2>&1 | tee "$out/$name.txt"
  [ "$(cat "$out/.rc")" = 0 ] || status=1
  rm -f "$out/.rc"
}

if wants plain; then
  run allreduce-np2 2 "$@"
fi
if wants shared; then
  run allreduce-np2-shared 2 --shared --algos ring,mpi,shm,auto "$@"
fi
if wants more; then
  for n in 3 4; do
    run "allreduce-np$n-oversubscribed" "$n" --max-bytes 16M --point-seconds 0.05 "$@"
  done
fi
if wants train; then
  trainer=$build/bench/train_throughput/bench-train-throughput
  round=1
  while [ "$round" -le "${TRAIN_ROUNDS:-3}" ]; do
    for algo in ring shm; do
      name=train-$algo-r$round
      {
        echo "# load before: $(uptime)"
        $mpirun -np 2 "$trainer" --steps "${TRAIN_STEPS:-300}" --repeats 1 --solo \
          --algo "$algo" --csv "$out/$name.csv" || echo "$name failed" >&2
        echo "# load after: $(uptime)"
      } 2>&1 | tee "$out/$name.txt"
    done
    round=$((round + 1))
  done
fi
if wants report; then
  "$python" bench/plot.py "$out"
  "$python" bench/shm_report.py "$out" || status=1
fi
echo "results in $out"
exit $status
