#!/usr/bin/env bash
# usage: consume_installed.sh <ringdp build dir> <scratch dir> <consumer source> <mpiexec>
#                             [<python> <package dir under the prefix>]
set -euo pipefail
build=$1 work=$2 src=$3 mpiexec=$4 python=${5:-} python_dir=${6:-}
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" > "$work/install.log"

echo "== find_package(ringdp) =="
cmake -S "$src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/cmake-build" -j 2 > "$work/build.log"
"$mpiexec" -n 2 --oversubscribe "$work/cmake-build/consumer"

echo "== pkg-config ringdp =="
libdir=$(find "$prefix" -name ringdp.pc -printf '%h\n' | head -1)
export PKG_CONFIG_PATH="$libdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046
mpicxx -O1 -o "$work/consumer-pc" "$src/consumer.cpp" $(pkg-config --cflags --libs --static ringdp)
"$mpiexec" -n 2 --oversubscribe "$work/consumer-pc"

if [ -n "$python" ]; then
  echo "== the Python package, from $python_dir under the prefix =="
  # From the scratch directory, so that nothing of the source or build tree is imported.
  (cd "$work" && PYTHONPATH="$prefix/$python_dir" INSTALLED_PREFIX="$prefix" \
     "$mpiexec" -n 2 --oversubscribe "$python" -c '
import os
import numpy as np
from mpi4py import MPI
import ringdp
x = ringdp.allreduce(np.full(5, MPI.COMM_WORLD.Get_rank(), np.float64))
assert np.all(x == 1.0), x
assert ringdp.__file__.startswith(os.environ["INSTALLED_PREFIX"]), ringdp.__file__
print(f"rank {MPI.COMM_WORLD.Get_rank()}: ringdp {ringdp.__version__} from {ringdp.__file__}")
')
fi
