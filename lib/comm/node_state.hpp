#pragma once
// A Communicator's node: the communicator of the ranks that share this rank's memory, its
// layout, and what the node-local collectives keep across calls (the shared window, the
// communicator across nodes). Internal to the library.

#include <mpi.h>

#include <memory>
#include <vector>

#include "comm/shared_window.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/node.hpp"

namespace ringdp::detail {

struct NodeState {
  NodeState() = default;
  NodeState(const NodeState&) = delete;
  NodeState& operator=(const NodeState&) = delete;
  ~NodeState();  // frees the windows and the node communicator (unless MPI is finalized)

  MPI_Comm comm = MPI_COMM_NULL;  // the ranks of this node, in communicator rank order
  NodeLayout layout;
  std::vector<int> members;  // the communicator rank of each rank of the node
  // The shared window of the node-local collectives, made at their first call.
  std::unique_ptr<SharedWindows> windows;
  // The hierarchical allreduce's communicator across nodes: this rank and the ranks of the
  // same index on every other node (MPI_COMM_NULL inside when this rank takes no part).
  // Made at its first call.
  std::unique_ptr<Communicator> across;
};

// The one door from the library into a Communicator's node state (a friend of it).
struct NodeAccess {
  static NodeState* state(const Communicator& comm) noexcept { return comm.node_.get(); }
};

// Finds the node of every rank of `comm` (of `size` ranks, this one `rank`): collective
// over `comm` (MPI_Comm_split_type, then one small allgather). Throws MpiError.
std::unique_ptr<NodeState, NodeStateDeleter> make_node_state(MPI_Comm comm, int rank, int size);

// The node state of `comm`, which every Communicator made from a communicator has.
// Throws InvalidArgument for a moved-from Communicator.
NodeState& node_state(const Communicator& comm);

// The shared windows of `comm`'s node, made (collectively over the communicator, after an
// agreement watched by the stall inspector) at the first call.
SharedWindows& shared_windows(const Communicator& comm);

}  // namespace ringdp::detail
