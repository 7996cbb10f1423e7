#!/usr/bin/env bash
# usage: consume_installed.sh <ringdp build dir> <scratch dir> <consumer source> <mpiexec>
#                             [<Fortran consumer source>]
# With the Fortran consumer (the build made the Fortran module), it is built and run too.
set -euo pipefail
build=$1 work=$2 src=$3 mpiexec=$4 fortran_src=${5:-}
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
