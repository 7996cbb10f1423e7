#pragma once
// The node-local building blocks over the shared window: a reduce-scatter to the owners of
// slices, and an allgather from them. The public reduce_scatter() and allgather() use them
// with one slice per rank (Algorithm::Shm); the hierarchical allreduce with one slice per
// local index that every node has (its owners then meet their counterparts on other nodes).
// Collective over the ranks of the node of `comm`; every rank passes the same count, and the
// same slices.

#include <span>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/types.hpp"
#include "shm_rounds.hpp"

namespace ringdp::detail {

/// Owner j (ranks 0 .. slices.size()-1 of the node) ends with the reduction, over every
/// rank of the node, of elements `slices[j]` of `data`, in `out` (slices[j].size elements;
/// may be this rank's own slice of `data`: in place). Ranks past the owners only give their
/// input (`out` unused). Average divides by the ranks of the node.
template <Reducible T>
void shm_reduce_scatter(const Communicator& comm, ShmKind kind, std::span<const T> data,
                        const std::vector<Slice>& slices, T* out, ReduceOp op);

/// Every rank ends with owner j's `source` (slices[j].size elements) at out + slices[j].begin,
/// for every owner j except itself when `skip_own` (its own slice is already in place).
/// `count`: the elements of `out` (the same on every rank).
template <Reducible T>
void shm_allgather(const Communicator& comm, ShmKind kind, const T* source, std::size_t count,
                   const std::vector<Slice>& slices, T* out, bool skip_own);

}  // namespace ringdp::detail
