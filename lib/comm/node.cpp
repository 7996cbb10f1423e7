// Node detection: which ranks of a communicator share memory.
//
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) groups the ranks that can share memory (one
// host). RINGDP_NODE_SIZE=k cuts each such group further into runs of k consecutive
// communicator ranks, so that one machine can play several nodes in tests: the ranks of a
// cut still share memory, which is all the node-local collectives need. Node indices and
// the smallest and largest node come from one allgather of (lowest rank of my node, ranks
// on my node), so every rank computes the same layout.

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "comm/node_state.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/error.hpp"

namespace ringdp {

const NodeLayout& Communicator::node_layout() const noexcept {
  static const NodeLayout kAlone{};
  return node_ ? node_->layout : kAlone;
}

namespace detail {
namespace {

// Per-communicator shared memory for staging: two rounds of input and two of results per
// rank. 256 KiB keeps one round of a rank's input, its slice of the results and the
// caller's matching bytes in a core's L2 (512 KiB - 1 MiB on the machines measured);
// measured in lib/collectives/allreduce_shm.cpp.
constexpr std::size_t kStageBytes = 256 * 1024;

// The rank in `comm` of every rank of `node` (a node's ranks are in `comm`'s order, so the
// first is the node's lowest rank).
std::vector<int> members_of(MPI_Comm comm, MPI_Comm node, int local_size) {
  MPI_Group node_group = MPI_GROUP_NULL;
  MPI_Group group = MPI_GROUP_NULL;
  RINGDP_MPI_CHECK(MPI_Comm_group(node, &node_group));
  RINGDP_MPI_CHECK(MPI_Comm_group(comm, &group));
  std::vector<int> local(static_cast<std::size_t>(local_size));
  for (int r = 0; r < local_size; ++r) local[static_cast<std::size_t>(r)] = r;
  std::vector<int> ranks(local.size(), MPI_UNDEFINED);
  const int rc =
      MPI_Group_translate_ranks(node_group, local_size, local.data(), group, ranks.data());
  MPI_Group_free(&node_group);
  MPI_Group_free(&group);
  check_mpi(rc, "MPI_Group_translate_ranks");
  return ranks;
}

NodeLayout layout_from(const std::vector<int>& pairs, int my_lowest, int local_rank,
                       int local_size) {
  // pairs: (lowest rank of the node, ranks on the node) for every rank of the communicator.
  std::vector<int> lowest;
  NodeLayout layout{.rank = local_rank, .size = local_size};
  layout.min_size = pairs.size() > 1 ? pairs[1] : 1;
  layout.max_size = layout.min_size;
  for (std::size_t i = 0; i < pairs.size(); i += 2) {
    lowest.push_back(pairs[i]);
    layout.min_size = std::min(layout.min_size, pairs[i + 1]);
    layout.max_size = std::max(layout.max_size, pairs[i + 1]);
  }
  std::sort(lowest.begin(), lowest.end());
  lowest.erase(std::unique(lowest.begin(), lowest.end()), lowest.end());
  layout.nodes = static_cast<int>(lowest.size());
  layout.node =
      static_cast<int>(std::lower_bound(lowest.begin(), lowest.end(), my_lowest) - lowest.begin());
  return layout;
}

}  // namespace

std::unique_ptr<NodeState, NodeStateDeleter> make_node_state(MPI_Comm comm, int rank, int size) {
  std::unique_ptr<NodeState, NodeStateDeleter> state(new NodeState);
  RINGDP_MPI_CHECK(
      MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &state->comm));
  // A malformed RINGDP_NODE_SIZE reads as unset here; the settings agreement that follows
  // the construction reports it on every rank.
  if (const int k = read_settings().values.node_size; k > 0 && k < size) {
    MPI_Comm cut = MPI_COMM_NULL;
    RINGDP_MPI_CHECK(MPI_Comm_split(state->comm, rank / k, rank, &cut));
    RINGDP_MPI_CHECK(MPI_Comm_free(&state->comm));
    state->comm = cut;
  }
  RINGDP_MPI_CHECK(MPI_Comm_set_errhandler(state->comm, MPI_ERRORS_RETURN));
  int local_rank = 0;
  int local_size = 1;
  RINGDP_MPI_CHECK(MPI_Comm_rank(state->comm, &local_rank));
  RINGDP_MPI_CHECK(MPI_Comm_size(state->comm, &local_size));
  state->members = members_of(comm, state->comm, local_size);
  const int lowest = state->members.front();
  const int mine[2] = {lowest, local_size};
  std::vector<int> pairs(2 * static_cast<std::size_t>(size));
  RINGDP_MPI_CHECK(MPI_Allgather(mine, 2, MPI_INT, pairs.data(), 2, MPI_INT, comm));
  state->layout = layout_from(pairs, lowest, local_rank, local_size);
  return state;
}

NodeState::~NodeState() {
  across.reset();
  windows.reset();
  if (comm != MPI_COMM_NULL && !Environment::finalized()) {
    if (MPI_Comm_free(&comm) != MPI_SUCCESS) {
      std::fprintf(stderr, "ringdp: rank %d: MPI_Comm_free of the node communicator failed\n",
                   world_rank());
    }
  }
}

void NodeStateDeleter::operator()(NodeState* state) const noexcept { delete state; }

NodeState& node_state(const Communicator& comm) {
  NodeState* state = NodeAccess::state(comm);
  if (state == nullptr) throw InvalidArgument("the Communicator was moved from");
  return *state;
}

SharedWindows& shared_windows(const Communicator& comm) {
  NodeState& node = node_state(comm);
  if (!node.windows) {
    // The window is made collectively over the node, at the first node-local collective.
    // Every rank must reach it: an agreement first, watched by the stall inspector, so that
    // ranks that called different collectives are named instead of hanging in MPI.
    agree(comm, std::nullopt);
    node.windows =
        std::make_unique<SharedWindows>(node.comm, node.layout.rank, node.layout.size, kStageBytes);
  }
  return *node.windows;
}

}  // namespace detail
}  // namespace ringdp
