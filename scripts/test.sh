#!/usr/bin/env bash
# README command (2): install the dependencies, build everything (after command (1), only
# what it left out: the tests and benchmarks), and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
source scripts/env.sh
cd "${BUILD_DIR:-build}"
ctest -j "$(nproc)" --output-on-failure --timeout 600
