// Node-local reduce-scatter and allgather over the shared window, in rounds
// (shm_rounds.hpp). Both start with every rank's arrival and the check that every rank of
// the node announced the same call (shm_sync.hpp), so that a call that differs between
// ranks is one error everywhere.

#include "shm_collectives.hpp"

#include <cstdint>
#include <optional>

#include "algorithms.hpp"
#include "comm/node_state.hpp"
#include "shm_sync.hpp"

namespace ringdp::detail {
namespace {

ShmCall announcement(ShmKind kind, std::size_t count, DataType type, int op,
                     const std::optional<SharedLocation>& where) {
  return {.count = static_cast<std::int64_t>(count),
          .type = static_cast<std::int32_t>(type),
          .op = op,
          .kind = static_cast<std::int32_t>(kind),
          .generation = where ? where->generation : -1,
          .offset = where ? where->offset : 0};
}

const char* name_of(ShmKind kind) {
  switch (kind) {
    case ShmKind::ReduceScatter:
      return "shm reduce_scatter";
    case ShmKind::Allgather:
      return "shm allgather";
    case ShmKind::NodeReduce:
    case ShmKind::NodeGather:
      return "hier allreduce (inside a node)";
    case ShmKind::Allreduce:
      break;
  }
  return "shm allreduce";
}

}  // namespace

template <Reducible T>
void shm_reduce_scatter(const Communicator& comm, ShmKind kind, std::span<const T> data,
                        const std::vector<Slice>& slices, T* out, ReduceOp op) {
  SharedWindows& windows = shared_windows(comm);
  ShmSync sync(comm, windows);
  const auto where = windows.locate(data.data(), data.size_bytes());
  sync.announce(announcement(kind, data.size(), data_type_of<T>, static_cast<int>(op), where));
  ShmRounds<T> rounds(sync, slices);
  const T* input = where ? nullptr : data.data();
  const bool owner = sync.rank() < rounds.owners();
  // An owner reads its own piece of each round where it is (not staged).
  const int keep = owner ? sync.rank() : -1;
  rounds.stage(0, input, keep);
  sync.wait_all(ShmFlag::Arrived, 0);
  check_same_call(comm, sync, name_of(kind));
  std::vector<const T*> in = buffers_in_window<T>(sync, nullptr);
  if (owner) in[static_cast<std::size_t>(sync.rank())] = data.data();
  for (std::size_t r = 0; r < rounds.rounds(); ++r) {
    if (owner) {
      rounds.combine(r, in, out + (rounds.begin(sync.rank(), r) - rounds.slice(sync.rank()).begin),
                     op);
    } else {
      sync.set(ShmFlag::Reduced, r);
    }
    if (r + 1 < rounds.rounds()) rounds.stage(r + 1, input, keep);
  }
  // Owners read a buffer that lives in the window in place: it must not change (the caller
  // may write it as soon as this returns) before the last owner is done with it.
  if (where) sync.wait_all(ShmFlag::Reduced, rounds.rounds() - 1);
  sync.finish(rounds.rounds());
}

template <Reducible T>
void shm_allgather(const Communicator& comm, ShmKind kind, const T* source, std::size_t count,
                   const std::vector<Slice>& slices, T* out, bool skip_own) {
  SharedWindows& windows = shared_windows(comm);
  ShmSync sync(comm, windows);
  const bool owner = sync.rank() < static_cast<int>(slices.size());
  const std::size_t mine = owner ? slices[static_cast<std::size_t>(sync.rank())].size : 0;
  const auto where = owner ? windows.locate(source, mine * sizeof(T)) : std::nullopt;
  sync.announce(announcement(kind, count, data_type_of<T>, -1, where));
  ShmRounds<T> rounds(sync, slices);
  sync.set(ShmFlag::Arrived, 0);
  sync.wait_all(ShmFlag::Arrived, 0);
  check_same_call(comm, sync, name_of(kind));
  // from[j]: owner j's slice where it lives in the window (read in place), else null.
  const std::vector<const T*> from = buffers_in_window<T>(sync, nullptr);
  const int skip = skip_own && owner ? sync.rank() : -1;
  for (std::size_t r = 0; r < rounds.rounds(); ++r) {
    if (r > 0) sync.set(ShmFlag::Arrived, r);
    if (owner && !where) {
      rounds.publish(r, source);
    } else {
      sync.set(ShmFlag::Reduced, r);
    }
    rounds.gather(r, from, out, skip);
  }
  // The others read this rank's slice in place: it must outlive their last copy.
  if (where) sync.wait_all(ShmFlag::Copied, rounds.rounds() - 1);
  sync.finish(rounds.rounds());
}

#define RINGDP_INSTANTIATE(T)                                                           \
  template void shm_reduce_scatter<T>(const Communicator&, ShmKind, std::span<const T>, \
                                      const std::vector<Slice>&, T*, ReduceOp);         \
  template void shm_allgather<T>(const Communicator&, ShmKind, const T*, std::size_t,   \
                                 const std::vector<Slice>&, T*, bool);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
