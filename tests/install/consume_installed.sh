#!/usr/bin/env bash
# usage: consume_installed.sh <ringdp build dir> <scratch dir> <consumer source> <mpiexec>
set -euo pipefail
build=$1 work=$2 src=$3 mpiexec=$4
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
