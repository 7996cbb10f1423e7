// Hierarchical allreduce: the node's shared memory inside each node, the network between
// nodes, each byte crossing a node's link as few times as a ring between nodes allows.
//
// With S = the fewest ranks any node has, the buffer is cut into S slices (even_slice):
//  1. inside each node, a shm reduce-scatter leaves the node's sum of slice j with the
//     node's rank j (j < S), in that rank's own buffer;
//  2. rank j of every node reduces slice j with its counterparts on the other nodes (a
//     communicator of one rank per node, made at the first call): the ring, or recursive
//     doubling for small slices (select_algorithm's rule for that many ranks, or the
//     tuning file's), so that S rings share each node's link, each on 1/S of the data;
//  3. inside each node, a shm allgather hands every rank every slice.
// Per node link this moves 2(m-1)/m x N bytes each way for m nodes, whatever the ranks per
// node; a flat ring over all ranks moves the same, but makes 2(n-1) steps over n = m x S
// ranks (latency) and, when consecutive ranks are not on one node, sends more than one
// rank's traffic over a link. Uneven nodes work: ranks past S take part in 1 and 3 only.
// The sum is node sums (in local rank order) summed across nodes, so it can differ from
// another algorithm's in the last bits (within the rounding bound of any summation order),
// but every rank gets the same bits: slice j is final on rank j of each node after step 2
// (the ring and recursive doubling leave their ranks bit-identical), then only copied.

#include <fmt/format.h>

#include <vector>

#include "algorithms.hpp"
#include "comm/node_state.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/settings.hpp"
#include "shm_collectives.hpp"

namespace ringdp::detail {
namespace {

// The communicator of this rank and the ranks of the same local index on the other nodes
// (null inside for ranks past `owners`). Collective over `comm` at the first call.
const Communicator& across_nodes(const Communicator& comm, int owners) {
  NodeState& node = node_state(comm);
  if (!node.across) {
    const int index = node.layout.rank;
    const int color = index < owners ? index : MPI_UNDEFINED;
    node.across = std::make_unique<Communicator>(comm.split(color, comm.rank()));
  }
  return *node.across;
}

// What runs between nodes: a tuning file's rule for that many ranks when it names one of
// ring, rd or mpi, else the built-in rule between ring and rd (a rank per node: none of
// them shares memory with another, so shm and hier do not apply).
Algorithm across_algorithm(std::size_t bytes, int nodes) {
  if (const TuningTable* table = tuning_from_environment()) {
    if (const auto tuned = table->algorithm(bytes, nodes)) {
      if (*tuned == Algorithm::Ring || *tuned == Algorithm::RecursiveDoubling ||
          *tuned == Algorithm::Mpi) {
        return *tuned;
      }
    }
  }
  return select_algorithm(bytes, nodes);
}

template <class T>
void allreduce_across(const Communicator& across, std::span<T> slice, ReduceOp op) {
  switch (across_algorithm(slice.size_bytes(), across.size())) {
    case Algorithm::RecursiveDoubling:
      return allreduce_recursive_doubling(across, slice, op);
    case Algorithm::Mpi:
      return allreduce_mpi(across, slice, op);
    default:
      return allreduce_ring(across, slice, op);
  }
}

}  // namespace

template <Reducible T>
void allreduce_hierarchical(const Communicator& comm, std::span<T> data, ReduceOp op) {
  const NodeLayout& layout = comm.node_layout();
  if (comm.size() == 1) return;
  if (layout.one_node()) return allreduce_shm(comm, data, op);
  const int owners = layout.min_size;
  std::vector<Slice> slices(static_cast<std::size_t>(owners));
  for (int j = 0; j < owners; ++j) {
    slices[static_cast<std::size_t>(j)] = even_slice(data.size(), owners, j);
  }
  // Sums in the phases; an average is divided once, by its owner, after the last one.
  const ReduceOp phase_op = op == ReduceOp::Average ? ReduceOp::Sum : op;
  const bool alone = layout.size == 1;  // a node of one rank has nothing to do inside it
  const bool owner = layout.rank < owners;
  const Slice mine = owner ? slices[static_cast<std::size_t>(layout.rank)] : Slice{};
  const Communicator& across = across_nodes(comm, owners);
  if (!alone) {
    shm_reduce_scatter<T>(comm, ShmKind::NodeReduce, data, slices, data.data() + mine.begin,
                          phase_op);
  }
  if (owner) {
    const std::span<T> part = data.subspan(mine.begin, mine.size);
    allreduce_across(across, part, phase_op);
    if (op == ReduceOp::Average) finish_average(part.data(), part.size(), comm.size());
  }
  if (!alone) {
    shm_allgather<T>(comm, ShmKind::NodeGather, data.data() + mine.begin, data.size(), slices,
                     data.data(), /*skip_own=*/true);
  }
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_hierarchical<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
