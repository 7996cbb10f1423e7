#!/usr/bin/env bash
# README command (1): install the dependencies, build, and run the main job on 2 ranks:
# ringdp-train with no flag trains the 784-512-256-10 MLP on the bundled MNIST subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
source scripts/env.sh
mpirun -np 2 build/apps/ringdp-train/ringdp-train
