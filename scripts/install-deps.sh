#!/usr/bin/env bash
# Installs the Debian packages ringdp needs, and only those missing.
# Idempotent: runs `apt-get update` at most once, and not at all when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev          # MPI (Open MPI)
  gfortran                            # the Fortran module (use ringdp) and the Fortran tests of
                                      # libringdp_mpi.so; CMake skips both without it
  libhdf5-openmpi-dev hdf5-tools      # parallel HDF5, built against Open MPI; h5dump
  libeigen3-dev                       # dense linear algebra for the models
  catch2                              # Catch2 v2 (2.13) for the tests
  libfmt-dev libcli11-dev             # formatting, command-line flags
  python3 python3-h5py python3-matplotlib  # data conversion and benchmark plots
  python3-dev pybind11-dev            # the Python package ringdp: a pybind11 extension
  python3-numpy python3-mpi4py        # what the package works on: numpy arrays, mpi4py communicators
  python3-pytest                      # the package's tests (pytest under mpirun)
  # ringdp.torch, its tests and examples, and the comparison with DDP: PyTorch (CPU). Large:
  # several hundred MB with its dependencies. libopenblas0-pthread is its fast BLAS (with
  # the reference libblas3 alone its matrix products are far slower).
  python3-torch libopenblas0-pthread
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
