#!/usr/bin/env bash
# usage: consume_installed.sh <ringdp build dir> <scratch dir> <consumer source> <mpiexec>
#                             [--fortran <Fortran consumer source>]
#                             [--python <python> <package dir under the prefix>]
# With the Fortran consumer (the build made the Fortran module), it is built and run too;
# with --python (the build made the Python package), the installed package is imported.
set -euo pipefail
build=$1 work=$2 src=$3 mpiexec=$4
shift 4
fortran_src="" python="" python_dir=""
while [ $# -gt 0 ]; do
  case $1 in
    --fortran) fortran_src=$2; shift 2 ;;
    --python) python=$2 python_dir=$3; shift 3 ;;
    *) echo "consume_installed.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
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

[[ -n $fortran_src ]] || exit 0

echo "== find_package(ringdp COMPONENTS Fortran) =="
cmake -S "$fortran_src" -B "$work/fortran-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/fortran-configure.log"
cmake --build "$work/fortran-build" -j 2 > "$work/fortran-build.log"
"$mpiexec" -n 2 --oversubscribe "$work/fortran-build/consumer_fortran"

echo "== pkg-config ringdp-fortran =="
# shellcheck disable=SC2046
mpifort -O1 -o "$work/consumer-fortran-pc" "$fortran_src/consumer.f90" \
  $(pkg-config --cflags --libs ringdp-fortran)
"$mpiexec" -n 2 --oversubscribe "$work/consumer-fortran-pc"
