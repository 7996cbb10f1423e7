#!/bin/sh
# Runs ringdp-bench at 1, 2, 3 and 4 ranks on this machine and writes, for each rank
# count N, allreduce-npN[-oversubscribed].{csv,json,txt} under
# bench/results/<host>-<date>/, then draws the plots there (bench/plot.py).
#
# usage: bench/allreduce_sweep.sh [-- ringdp-bench flags...]
# environment: BUILD (default build), RANKS (default "1 2 3 4"), OUT (default
#   bench/results/<host>-<YYYY-MM-DD>), MPIRUN (default mpirun), PYTHON (default
#   /usr/bin/python3, which has matplotlib).
# Rank counts above the CPU count run oversubscribed: ranks time-share the cores, so
# their times measure the machine's scheduling as much as the algorithms. Such runs are
# named *-oversubscribed and say so in their table header.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
# Run from the repository root with relative paths: the command line is recorded in each
# JSON header, and it should not carry this machine's directories.
cd "$root"
build=${BUILD:-build}
ranks=${RANKS:-"1 2 3 4"}
host=$(hostname -s 2>/dev/null || hostname)
out=${OUT:-bench/results/$host-$(date -u +%Y-%m-%d)}
mpirun=${MPIRUN:-mpirun}
python=${PYTHON:-/usr/bin/python3}
bench=$build/apps/ringdp-bench/ringdp-bench
[ "${1:-}" = "--" ] && shift

if [ ! -x "$bench" ]; then
  echo "allreduce_sweep.sh: $bench not found; build first (scripts/build.sh)" >&2
  exit 1
fi
. scripts/env.sh
mkdir -p "$out"
cpus=$(nproc)
status=0
for n in $ranks; do
  name=allreduce-np$n
  if [ "$n" -gt "$cpus" ]; then
    name=$name-oversubscribed
    echo "=== $n ranks on $cpus CPUs: OVERSUBSCRIBED (ranks time-share the cores) ==="
  else
    echo "=== $n ranks on $cpus CPUs ==="
  fi
  # The pipeline into tee runs in a subshell: the run's exit status comes back in a file.
  # A failing run (wrong results) is reported at the end; the sweep goes on.
  {
    echo "# load before: $(uptime)"
    rc=0
    $mpirun -np "$n" "$bench" --csv "$out/$name.csv" --json "$out/$name.json" "$@" || rc=$?
    echo "# load after: $(uptime)"
    echo "$rc" > "$out/.rc"
  } 2>&1 | tee "$out/$name.txt"
  [ "$(cat "$out/.rc")" = 0 ] || status=1
  rm -f "$out/.rc"
done
"$python" bench/plot.py "$out"
echo "results in $out"
exit $status
