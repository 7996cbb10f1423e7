#!/bin/sh
# Where the ring's 64 MiB dip comes from: the ring and MPI_Allreduce at 2 ranks from 16 to
# 256 MiB (x2) with the floor, under variants that each remove one suspected cause, the
# variants interleaved round by round (the load of a shared machine moves over minutes):
#
#   default  as every other measurement runs (scripts/env.sh, vader without single copy)
#   pool     Open MPI's shared-memory fragment pool raised from 512 to 8192 fragments
#            (btl_vader_free_list_max): the ring posts a whole chunk (N/2 at 2 ranks) at
#            once, 32 MiB at 64 MiB, past the default pool of 512 x 32 KiB = 16 MiB
#   seg32k, seg1m  the ring's segment (pipelining unit) at 32 KiB and 1 MiB, not 128 KiB
#   thp      glibc's malloc on transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1;
#            the kernel's THP mode is `madvise` here): TLB reach and page faults
#
# Every run also records the page faults and context switches of the ranks (perf stat,
# when perf is there). Results: OUT/<variant>-r<round>.{csv,txt}; ring_dip.py prints the
# ring's busbw per size and variant (median over rounds) and writes dip.txt and dip.png.
#
# usage: bench/ring_dip.sh      environment: BUILD (build), OUT
#   (bench/results/<host>-<date>-dip), ROUNDS (3), VARIANTS ("default pool seg32k seg1m
#   thp"), POINT_SECONDS (0.5), MIN_BYTES (16M), MAX_BYTES (256M), MPIRUN (mpirun),
#   PYTHON (/usr/bin/python3)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
host=$(hostname -s 2>/dev/null || hostname)
out=${OUT:-bench/results/$host-$(date -u +%Y-%m-%d)-dip}
rounds=${ROUNDS:-3}
variants=${VARIANTS:-"default pool seg32k seg1m thp"}
seconds=${POINT_SECONDS:-0.5}
min=${MIN_BYTES:-16M}
max=${MAX_BYTES:-256M}
mpirun=${MPIRUN:-mpirun}
python=${PYTHON:-/usr/bin/python3}
bench=$build/apps/ringdp-bench/ringdp-bench
[ -x "$bench" ] || { echo "ring_dip.sh: $bench not found; build first" >&2; exit 1; }
. scripts/env.sh
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mkdir -p "$out"
perf=0
if command -v perf >/dev/null 2>&1 && perf stat -e page-faults true >/dev/null 2>&1; then
  perf=1
fi
# sh -c "$rank_wrapper" sh PERF_PREFIX COMMAND...: runs COMMAND, under perf stat writing PERF_PREFIX.<rank>
# when perf works (the rank from Open MPI's environment).
rank_wrapper='p=$1; shift; [ -n "$p" ] || exec "$@"
exec perf stat -x, -e page-faults,context-switches -o "$p.$OMPI_COMM_WORLD_RANK" "$@"'

round=1
while [ "$round" -le "$rounds" ]; do
  for v in $variants; do
    extra=""
    envs=""
    case $v in
      default) ;;
      pool) envs="OMPI_MCA_btl_vader_free_list_max=8192" ;;
      seg32k) extra="--segment 32K" ;;
      seg1m) extra="--segment 1M" ;;
      thp) envs="GLIBC_TUNABLES=glibc.malloc.hugetlb=1" ;;
      *) echo "ring_dip.sh: unknown variant $v" >&2; exit 2 ;;
    esac
    name=$v-r$round
    {
      echo "# variant $v round $round; load before: $(uptime)"
      # shellcheck disable=SC2086 # envs and extra are lists of words
      prefix=""
      [ "$perf" = 1 ] && prefix=$out/$name.perf
      env $envs $mpirun -np 2 sh -c "$rank_wrapper" sh "$prefix" \
        "$bench" --algos ring,mpi --min-bytes "$min" --max-bytes "$max" --factor 2 \
        --point-seconds "$seconds" --csv "$out/$name.csv" $extra
      echo "# load after: $(uptime)"
    } 2>&1 | tee "$out/$name.txt"
  done
  round=$((round + 1))
done
"$python" bench/ring_dip.py "$out"
echo "results in $out"
