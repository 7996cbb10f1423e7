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
template <Reducible T>
void allreduce_shm(const Communicator& comm, std::span<T> data, ReduceOp op);
template <Reducible T>
void allreduce_hierarchical(const Communicator& comm, std::span<T> data, ReduceOp op);

template <Reducible T>
void reduce_scatter_ring(const Communicator& comm, std::span<const T> data, std::span<T> my_block,
                         ReduceOp op);

// What reduce_scatter() and allgather() (`what`) run for `requested`: Ring, Shm or Mpi;
// Auto is Shm when every rank shares one node (and there are several), else Ring. Throws
// InvalidArgument for any other algorithm, or Shm over several nodes (the same on every
// rank: the layout is).
Algorithm resolve_block_algorithm(Algorithm requested, int ranks, const NodeLayout& nodes,
                                  const char* what);

}  // namespace ringdp::detail

// Explicit instantiation of a function template for the four Reducible types.
#define RINGDP_INSTANTIATE_FOR_REDUCIBLE(MACRO) \
  MACRO(float)                                  \
  MACRO(double)                                 \
  MACRO(std::int32_t)                           \
  MACRO(std::int64_t)
