// The check every node-local collective makes after its first arrival: did every rank of
// the node announce the same call? It costs nothing extra (the announcements are read
// after a wait the collective makes anyway), and it turns a call that differs between
// ranks, which would otherwise take different paths and hang, into one error everywhere.

#include <fmt/format.h>

#include <string>

#include "comm/node_state.hpp"
#include "ringdp/error.hpp"
#include "shm_sync.hpp"

namespace ringdp::detail {
namespace {

bool same(const ShmCall& a, const ShmCall& b) {
  return a.kind == b.kind && a.count == b.count && a.type == b.type && a.op == b.op;
}

std::string describe(const ShmCall& call) {
  std::string text =
      fmt::format("count {}, type {}", call.count, to_string(static_cast<DataType>(call.type)));
  if (call.op >= 0) text += fmt::format(", op {}", to_string(static_cast<ReduceOp>(call.op)));
  return text;
}

}  // namespace

void check_same_call(const Communicator& comm, ShmSync& sync, const char* what) {
  const ShmCall& first = sync.call_of(0);
  for (int k = 1; k < sync.ranks(); ++k) {
    const ShmCall& theirs = sync.call_of(k);
    if (same(first, theirs)) continue;
    const auto& members = node_state(comm).members;
    const std::string message = fmt::format(
        "{}: ranks of one node called it with different arguments: rank {} passed {}, but "
        "rank {} passed {}",
        what, members[static_cast<std::size_t>(k)], describe(theirs), members.front(),
        describe(first));
    sync.finish(1);  // every rank of the node finds the same difference, and ends alike
    throw_error(ErrorKind::Mismatch, members[static_cast<std::size_t>(k)], message,
                /*collective=*/true);
  }
}

}  // namespace ringdp::detail
