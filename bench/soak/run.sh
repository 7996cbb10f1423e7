#!/usr/bin/env bash
# Soak run: 1,000 allreduce calls of random sizes, types, operations and algorithms at 4
# ranks in check mode, each compared with MPI_Allreduce; prints the mismatches and the RSS
# of every rank. Exit status non-zero on any mismatch. Not part of CI (it runs minutes).
#   [CALLS=1000] [RANKS=4] bench/soak/run.sh [more ringdp-soak flags, e.g. --seed 7]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
cmake --build "$BUILD_DIR" -j "$(nproc)" --target ringdp-soak > /dev/null
source scripts/env.sh
export RINGDP_CHECK=1
mpirun -np "${RANKS:-4}" "$BUILD_DIR/bench/soak/ringdp-soak" --calls "${CALLS:-1000}" "$@"
