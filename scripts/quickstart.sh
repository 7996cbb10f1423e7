#!/usr/bin/env bash
# README command (1): install the dependencies, build the library and the applications
# (not the tests and benchmarks: command (2) builds those in the same build directory), and
# run the main job on 2 ranks: ringdp-train with no flag trains the 784-512-256-10 MLP on
# the bundled MNIST subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_TARGET=ringdp-apps bash scripts/build.sh
source scripts/env.sh
mpirun -np 2 build/apps/ringdp-train/ringdp-train
