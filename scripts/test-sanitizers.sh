#!/usr/bin/env bash
# The test suite under sanitizers (CI runs it after scripts/test.sh, see .ci/run).
#
#   scripts/test-sanitizers.sh [KIND...]      (default: address,undefined thread)
#
# KIND is a value of RINGDP_SANITIZE, built in its own directory:
#   address,undefined  build-asan-ubsan/  AddressSanitizer (+ LeakSanitizer) and
#                                         UndefinedBehaviorSanitizer in one build: one
#                                         compile and one test run instead of two
#   address            build-asan/
#   undefined          build-ubsan/
#   thread             build-tsan/        ThreadSanitizer over the tests whose code runs
#                                         threads beside MPI (see THREAD_TESTS)
# Each build is -O2 (keeps the suite fast) with line tables only (-g1: file and line in the
# reports; full -g made the Eigen-heavy files take about 1.6 times as long to compile under
# ASan+UBSan, for variable locations no report prints), with the same -march as the normal
# build (scripts/build.sh), so the sanitized code is the code the normal suite runs.
# ccache is used when installed (set CCACHE=0 to disable).
# Suppressions (tests/sanitizers/) cover only reports from inside Open MPI, its helper
# libraries and HDF5, each with its reason. Every KIND runs even if an earlier one failed;
# the script prints the build and test times of each and exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
KINDS=("$@")
[ ${#KINDS[@]} -eq 0 ] && KINDS=(address,undefined thread)
source scripts/env.sh

# Tests left out of every sanitized run, and why:
#  - rank counts 3, 4, 5: sanitized processes run several times slower, and 3-5 ranks take
#    the same code paths as 2 with more messages (the normal build runs them all).
#  - install.consumer builds a separate, unsanitized project against the installed library,
#    which cannot link a sanitizer runtime it was not built with.
#  - cluster_emulation tests the emulated-cluster scripts (namespaces, traffic shaping),
#    not ringdp's code: its one MPI program is ringdp-hello.
#  - the slowest application-level runs, whose code paths the library tests already take
#    under the sanitizers: train_app_resume (five full training runs; checkpoint, resume
#    and trainer are in test_train, test_checkpoint_files and train_app_outputs),
#    train_app_bad_flags (a dozen launches that end in flag parsing),
#    train_app_corrupt_checkpoint and train_app_model_mismatch (the checkpoint loader's
#    error paths, in test_hostile_checkpoints and test_checkpoint_files), and
#    example_train_mlp (three epochs of training to an accuracy bar; test_train trains).
#    train_app_outputs (a whole ringdp-train run with every output file) and
#    train_app_missing_data stay, so the application's own code is sanitized too.
#  - stall_app_*: 3-rank ringdp-train jobs (stalls, a killed rank) with limits in seconds
#    (a job must end within 30 s of a kill); the inspector's code they run is sanitized
#    at 1 and 2 ranks in test_stall, under ThreadSanitizer too.
#  - durability_kill_*: SIGKILL writer jobs at moments spread over a write time measured
#    first, and need enough kills to land mid-write; under the sanitizers' slowdown the
#    synth case saw too few land and the checkpoint case (50 kills) ran past its 150 s
#    limit. What they check is the temp-file-and-rename protocol, not memory use. The
#    writers' code (save_checkpoint, ringdp-data synth) is sanitized in
#    test_checkpoint_files, test_data_synth and data_cli_synth.
EXCLUDE='\.np[345]$|^install\.consumer$|^cluster_emulation$'
EXCLUDE+='|^train_app_(resume|bad_flags|corrupt_checkpoint|model_mismatch)$|^example_train_mlp\.'
EXCLUDE+='|^stall_app_|^durability_kill_'

# ThreadSanitizer: the tests whose code runs threads beside MPI: collectives and
# communicators (Open MPI's own progress threads), the GradientReducer's progress thread,
# the loader's read-ahead thread (test_data, test_data_io_driver), the trainer, which runs
# both at once (test_train; test_nonfinite: the non-finite check on the reducer's thread;
# test_train_data_errors: a read error on the loader's thread), and the stall inspector,
# whose step and bucket context is set by one thread and read by the waiting one
# (test_stall), and a reduction failing on the reducer's thread and settled there
# (test_unwind).
THREAD_TESTS=(test_collectives test_collectives_env test_gradient_reducer
              test_gradient_reducer_thread_level test_comm test_data test_data_io_driver
              test_train test_nonfinite test_train_data_errors test_stall test_unwind)
# ...except test_collectives at 2 ranks: under ThreadSanitizer it ran past its time limit in
# 2 of 6 runs on the (loaded) development machine, at 120 s and 300 s against 13-57 s for
# the others; both ranks' stacks, taken in a third slow run, were in the same MPI_Allreduce
# on MPI_COMM_WORLD (the test's own reference call), inside Open MPI's recursive-doubling
# allreduce waiting for its sendrecv. Whether Open MPI's shared-memory transport hangs
# there or only crawls is not settled; no ringdp frame or thread is on those stacks (the
# test starts no thread), and the test passes at 2 ranks under ASan+UBSan and in the normal
# build. At 1 rank it still runs every algorithm under ThreadSanitizer.
THREAD_EXCLUDE='|^test_collectives\.np2$'

# Open MPI unloads its components (mca_*.so plugins) in MPI_Finalize; LeakSanitizer runs
# later and then sees their allocations as "<unknown module>", which no suppression by
# library name can match. Keeping them loaded keeps the reports attributable.
export OMPI_MCA_mca_base_component_disable_dlclose=1
# Common to all: stop at the first report, with a stack, and fail the test. Full unwinding
# for leak stacks: Open MPI is built without frame pointers, and the fast unwinder stops at
# its first frame, before the library name that suppressions match.
# intercept_tls_get_addr=0 works around a bug of the sanitizer runtime with glibc, not a
# report: to find a thread's dynamic TLS blocks (those of dlopen'ed libraries), the runtime
# guesses glibc's block layout from the block's address, and a block that glibc 2.36
# allocated with malloc at an address ending in 0x010 is taken for an older layout with a
# size header; LeakSanitizer then scans a bogus range and its thread crashes at exit
# ("Tracer caught signal 11", "LeakSanitizer has encountered a fatal error"; seen in
# `ringdp-data inspect`, every run). Without the interception those blocks are ordinary heap
# blocks, reached through glibc's thread-control block, so what they point to is still
# scanned and no leak is hidden.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:fast_unwind_on_malloc=0:\
intercept_tls_get_addr=0:print_suppressions=0:suppressions=$ROOT/tests/sanitizers/asan.supp"
export LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0:\
fast_unwind_on_malloc=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/sanitizers/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0:\
suppressions=$ROOT/tests/sanitizers/tsan.supp"

OPT_FLAGS="-O2 -g1 -DNDEBUG"
launcher=()
if [ "${CCACHE:-1}" != 0 ] && command -v ccache > /dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

summary=()
failed=0

# CPU seconds (user + system) used so far by this script's finished children: with the
# wall time, it shows how much of a phase was waiting for a busy machine.
cpu_seconds() {
  local stat
  stat=$(< /proc/$$/stat)
  stat=${stat##*) }  # the fields after the command name; cutime and cstime are 14th, 15th
  set -- $stat
  echo $(( (${14} + ${15}) / $(getconf CLK_TCK) ))
}

# run KIND DIR CTEST_SELECTION [BUILD_TARGET...]
run() {
  local kind=$1 dir=$2 select=$3
  shift 3
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  local start=$SECONDS cpu0 build_s build_cpu test_s test_cpu status=passed
  cpu0=$(cpu_seconds)
  echo "== sanitizer $kind: configure + build in $dir"
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$OPT_FLAGS" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$OPT_FLAGS" \
        -DRINGDP_WERROR=OFF -DRINGDP_NATIVE=ON -DRINGDP_SANITIZE="$kind" -DRINGDP_BUILD_BENCH=OFF "${launcher[@]}" \
        > "$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    summary+=("$(printf '%-18s configure FAILED' "$kind")")
    failed=1
    return
  fi
  if ! cmake --build "$dir" -j "$JOBS" "${targets[@]}"; then
    summary+=("$(printf '%-18s build FAILED after %d s' "$kind" $((SECONDS - start)))")
    failed=1
    return
  fi
  build_s=$((SECONDS - start))
  build_cpu=$(($(cpu_seconds) - cpu0))
  echo "== sanitizer $kind: ctest -E '$EXCLUDE' ${select:+-R '$select'}"
  start=$SECONDS
  cpu0=$(cpu_seconds)
  if ! (cd "$dir" && ctest -j "$JOBS" --output-on-failure --timeout 300 -E "$EXCLUDE" \
          ${select:+-R "$select"}); then
    status=FAILED
    failed=1
  fi
  test_s=$((SECONDS - start))
  test_cpu=$(($(cpu_seconds) - cpu0))
  summary+=("$(printf '%-18s build %5d s (CPU %5d s)   tests %5d s (CPU %5d s)   %s' \
               "$kind" "$build_s" "$build_cpu" "$test_s" "$test_cpu" "$status")")
}

for kind in "${KINDS[@]}"; do
  case $kind in
    address,undefined | undefined,address) run address,undefined build-asan-ubsan "" ;;
    address) run address build-asan "" ;;
    undefined) run undefined build-ubsan "" ;;
    thread)
      select="^($(IFS='|'; echo "${THREAD_TESTS[*]}"))\\.np"
      EXCLUDE="$EXCLUDE$THREAD_EXCLUDE" run thread build-tsan "$select" "${THREAD_TESTS[@]}" ;;
    *) echo "unknown sanitizer '$kind' (address,undefined, address, undefined, thread)" >&2
       exit 2 ;;
  esac
done

echo "== sanitizer summary"
printf '%s\n' "${summary[@]}"
exit $failed
