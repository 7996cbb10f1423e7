#!/usr/bin/env bash
# The layout rules of ringdp (../README.md, "Layout"), checked: no source file in lib/,
# include/ or apps/ over 450 lines, no function there over 80 lines (clang-tidy's
# readability-function-size, needs a build's compile_commands.json), RINGDP_* variables read
# only by the settings modules, and nn/ free of comm/ (and so of MPI). Prints what breaks a
# rule and exits non-zero if anything does.
#
#   scripts/check-structure.sh [BUILD_DIR]     (default: build)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
status=0
say() { echo "check-structure: $*"; status=1; }

sources=$(git ls-files lib include apps | grep -E '\.(c|h|cpp|hpp)$')
while read -r lines file; do
  [ "$file" = total ] && continue
  [ "$lines" -gt 450 ] && say "$file has $lines lines (at most 450)"
done < <(echo "$sources" | xargs wc -l)

getenv=$(grep -rl getenv lib apps | grep -vE '^lib/comm/settings\.cpp$|^lib/interpose/settings\.cpp$')
[ -n "$getenv" ] && say "getenv outside the settings modules: $getenv"

nn_comm=$(grep -rlE '#include [<"](ringdp/comm/|mpi\.h)' include/ringdp/nn lib/nn)
[ -n "$nn_comm" ] && say "nn/ includes comm/ or MPI: $nn_comm"

if command -v clang-tidy > /dev/null && [ -f "$BUILD_DIR/compile_commands.json" ]; then
  config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 80}]}'
  long=$(echo "$sources" | grep -E '\.(c|cpp)$' |
         xargs -P "$(nproc)" -n 4 clang-tidy -p "$BUILD_DIR" --quiet \
           --checks='-*,readability-function-size' --config="$config" 2> /dev/null |
         grep -oE '^[^ ]+:[0-9]+:[0-9]+: note: [0-9]+ lines' |
         sort -u)
  [ -n "$long" ] && say "functions over 80 lines:" && echo "${long//$PWD\//}"
else
  echo "check-structure: function lengths not checked (needs clang-tidy and $BUILD_DIR/compile_commands.json)"
fi
[ $status -eq 0 ] && echo "check-structure: all rules hold"
exit $status
