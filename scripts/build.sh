#!/usr/bin/env bash
# Configures and builds ringdp into build/ (Release, warnings as errors). Extra arguments
# go to CMake's configure step, e.g. -DRINGDP_SANITIZE=address.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# -march=native: this build runs where it is built; Eigen needs AVX2/FMA to reach the
# model throughput the benchmarks report (about 2x over the baseline x86-64 SSE2 code).
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRINGDP_WERROR=ON -DRINGDP_NATIVE=ON "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
