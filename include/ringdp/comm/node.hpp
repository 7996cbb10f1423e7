#pragma once
/// \file
/// How the ranks of a communicator share nodes: which ranks can reach each other's memory.

namespace ringdp {

/// The ranks of a Communicator grouped by node: the ranks MPI_Comm_split_type
/// (MPI_COMM_TYPE_SHARED) puts together, cut further into groups of RINGDP_NODE_SIZE
/// consecutive ranks when that variable is set (so that tests on one machine can run the
/// code paths of several nodes). Found when the Communicator is built; the same on every
/// rank except `rank`, `size` and `node`, which describe this rank's own node.
struct NodeLayout {
  int rank = 0;      ///< this rank's index on its node (a node's ranks in communicator order)
  int size = 1;      ///< ranks on this rank's node
  int node = 0;      ///< this node's index (nodes numbered in the order of their lowest rank)
  int nodes = 1;     ///< number of nodes
  int min_size = 1;  ///< fewest ranks on one node
  int max_size = 1;  ///< most ranks on one node

  /// True when every rank of the communicator shares this rank's node.
  [[nodiscard]] bool one_node() const noexcept { return nodes == 1; }
};

}  // namespace ringdp
