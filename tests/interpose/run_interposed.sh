#!/usr/bin/env bash
# Runs an unmodified MPI test program under LD_PRELOAD of the interposition library and
# checks, from the counts the library writes at MPI_Finalize (RINGDP_INTERPOSE_STATS),
# that on every rank exactly the calls the program expects to be served were served and
# the others passed to MPI. The program checks its own answers and writes its expectation
# and a hash of its results (--expect, --hash; see harness.h).
#
# usage: run_interposed.sh MPIEXEC NP LIBRARY [options] -- PROGRAM [ARGS...]
#   --baseline        first run PROGRAM without the preload: every preloaded run must give
#                     the same result hash (identical results with and without ringdp)
#   --algos "A B"     one preloaded run per RINGDP_ALGORITHM value ("" = unset; default)
#   --env VAR=VALUE   environment of the preloaded runs (repeatable)
#   --all-passed      expect nothing served: every call passed to MPI (RINGDP_INTERPOSE=0)
#   --grep REGEX      the output of every preloaded run must match REGEX (grep -E)
#   --no-stats        do not check the counts (programs that expect an error)
#   --linked          PROGRAM links the library itself (before -lmpi): no LD_PRELOAD
set -euo pipefail

mpiexec=$1 np=$2 library=$3
shift 3
baseline=0 all_passed=0 check_stats=1 grep_regex="" linked=0
algos=("")
envs=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --baseline) baseline=1 ;;
    --algos) read -r -a algos <<< "$2"; shift ;;
    --env) envs+=(-x "$2"); shift ;;
    --all-passed) all_passed=1 ;;
    --grep) grep_regex=$2; shift ;;
    --no-stats) check_stats=0 ;;
    --linked) linked=1 ;;
    --) shift; break ;;
    *) echo "run_interposed.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
program=("$@")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset LD_PRELOAD

failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# expect FILE KEY -> value
expect() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

if [[ $baseline == 1 ]]; then
  echo "== without the preload"
  "$mpiexec" -n "$np" "${program[@]}" --expect "$work/expect" --hash "$work/hash.baseline" ||
    fail "the program failed without the preload"
fi

for algo in "${algos[@]}"; do
  label=${algo:-default}
  preload=(-x "LD_PRELOAD=$library")
  [[ $linked == 1 ]] && preload=()
  echo "== ${preload[*]:-linked} RINGDP_ALGORITHM=${algo:-<unset>} ${envs[*]}"
  algo_env=()
  [[ -n $algo ]] && algo_env=(-x "RINGDP_ALGORITHM=$algo")
  rm -f "$work/stats"
  if ! "$mpiexec" -n "$np" "${preload[@]}" -x "RINGDP_INTERPOSE_STATS=$work/stats" \
      "${algo_env[@]}" "${envs[@]}" \
      "${program[@]}" --expect "$work/expect" --hash "$work/hash.$label" > "$work/out" 2>&1; then
    cat "$work/out"
    fail "the program failed under the preload ($label)"
    continue
  fi
  cat "$work/out"
  if [[ -n $grep_regex ]] && ! grep -Eq "$grep_regex" "$work/out"; then
    fail "output does not match /$grep_regex/ ($label)"
  fi
  if [[ $baseline == 1 ]] && ! cmp -s "$work/hash.baseline" "$work/hash.$label"; then
    fail "results differ from the run without the preload ($label)"
  fi
  [[ $check_stats == 1 ]] || continue
  if [[ ! -s $work/stats ]]; then
    fail "the library wrote no counts ($label)"
    continue
  fi
  served=$(expect "$work/expect" served_calls)
  bytes=$(expect "$work/expect" served_bytes)
  passed=$(expect "$work/expect" passed_calls)
  if [[ $all_passed == 1 ]]; then
    passed=$((served + passed)) served=0 bytes=0
  fi
  ranks=0
  while read -r rank s_calls s_bytes p_calls _; do
    [[ $rank == "#" ]] && continue
    ranks=$((ranks + 1))
    if [[ $s_calls != "$served" || $s_bytes != "$bytes" || $p_calls != "$passed" ]]; then
      fail "rank $rank ($label): served $s_calls calls ($s_bytes bytes), passed $p_calls;" \
           "expected served $served ($bytes bytes), passed $passed"
    fi
  done < "$work/stats"
  [[ $ranks == "$np" ]] || fail "counts for $ranks ranks, expected $np ($label)"
  echo "counts ($label): every rank served $served calls ($bytes bytes), passed $passed"
done

if [[ $failures -gt 0 ]]; then
  echo "run_interposed.sh: $failures failure(s)" >&2
  exit 1
fi
echo "run_interposed.sh: all checks passed"
