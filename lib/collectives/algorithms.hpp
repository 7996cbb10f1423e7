#pragma once
// The allreduce algorithms, one file each; allreduce.cpp dispatches between them. Each is
// collective over comm, in place, handles any count (0 included) and leaves bit-identical
// results on every rank. Arguments are validated before they are called.

#include <span>

#include "ringdp/types.hpp"
#include "ringdp/comm/communicator.hpp"

namespace ringdp::detail {

template <Reducible T>
void allreduce_ring(const Communicator& comm, std::span<T> data, ReduceOp op);
template <Reducible T>
void allreduce_recursive_doubling(const Communicator& comm, std::span<T> data, ReduceOp op);
template <Reducible T>
void allreduce_mpi(const Communicator& comm, std::span<T> data, ReduceOp op);
template <Reducible T>
void allreduce_ps(const Communicator& comm, std::span<T> data, ReduceOp op);

}  // namespace ringdp::detail

// Explicit instantiation of a function template for the four Reducible types.
#define RINGDP_INSTANTIATE_FOR_REDUCIBLE(MACRO) \
  MACRO(float)                                  \
  MACRO(double)                                 \
  MACRO(std::int32_t)                           \
  MACRO(std::int64_t)
