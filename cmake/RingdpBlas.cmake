# The GEMM of the nn kernels (lib/nn/gemm.cpp): OpenBLAS when found, Eigen's own otherwise.
# On the model's shapes (784-512-256-10, batch 64 and 256, one thread) OpenBLAS 0.3.21 ran
# a step's products 1.21-1.33x faster than Eigen 3.4 (bench/nn_throughput/README.md).
# RINGDP_BLAS: `auto` takes OpenBLAS if installed (libopenblas-dev), `openblas` requires it,
# `eigen` never uses it. Sets RINGDP_USE_OPENBLAS (and BLAS::BLAS when ON).
set(RINGDP_BLAS auto CACHE STRING "GEMM of the nn kernels: auto, openblas or eigen")
set_property(CACHE RINGDP_BLAS PROPERTY STRINGS auto openblas eigen)
set(RINGDP_USE_OPENBLAS OFF)
if(NOT RINGDP_BLAS STREQUAL "eigen")
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS QUIET)
  if(BLAS_FOUND)
    set(RINGDP_USE_OPENBLAS ON)
  elseif(RINGDP_BLAS STREQUAL "openblas")
    message(FATAL_ERROR "RINGDP_BLAS=openblas but OpenBLAS was not found: apt-get install libopenblas-dev")
  endif()
endif()
if(RINGDP_USE_OPENBLAS)
  message(STATUS "ringdp: nn GEMM: OpenBLAS (${BLAS_LIBRARIES})")
else()
  message(STATUS "ringdp: nn GEMM: Eigen (RINGDP_BLAS=${RINGDP_BLAS})")
endif()
