#!/usr/bin/env bash
# Configures and builds ringdp into build/ (Release, warnings as errors). Extra arguments
# go to CMake's configure step, e.g. -DRINGDP_SANITIZE=address.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRINGDP_WERROR=ON "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
