// Shared-memory allreduce among the ranks of one node, through the node's shared window.
//
// A message-passing ring copies every byte through the transport: on one node about
// 5(p-1)N bytes of memory traffic for N bytes over p ranks. Ranks that share memory need
// 2pN: the owner of each slice reads the p inputs once and writes the sum once into every
// rank's buffer. Three paths, chosen alike on every rank (from the size, and from the
// calls the ranks announce at their first arrival):
//  - small (up to kSmallBytes): every rank copies its buffer to its staging area, waits
//    for all, and reduces all p copies itself, in rank order 0 .. p-1: one wait per call;
//  - in the window (every rank's buffer is a SharedBuffer span): no copy at all. Owner j
//    reads slice j of every rank's buffer, reduces it in rank order and writes the result
//    into slice j of every rank's buffer; a second wait ends the call;
//  - any other buffer: staged in rounds through the window (shm_rounds.hpp), each rank's
//    input read once and its result written once, with the pieces in between in cache.
//    Ranks whose buffer is in the window skip their copy-in.
// Every element of the result is computed by one owner (or, for small messages, by the
// same expression in the same order on every rank), so all ranks end bit-identical.

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>

#include "algorithms.hpp"
#include "comm/node_state.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/error.hpp"
#include "ringdp/testing.hpp"
#include "shm_rounds.hpp"
#include "shm_sync.hpp"

namespace ringdp::detail {
namespace {

// Up to this size every rank reduces all p inputs itself, with one wait per call, instead
// of two waits and a split of the work. Measured: see the note at the end of this file.
constexpr std::size_t kSmallBytes = 16 * 1024;

std::atomic<std::size_t> small_override{0};

template <class T>
void small_path(const Communicator& comm, ShmSync& sync, std::span<T> data, ReduceOp op) {
  const WindowGeneration& w = sync.window();
  copy_elements(reinterpret_cast<T*>(w.staging(sync.rank(), sync.round(0))), data.data(),
                data.size());
  sync.set(ShmFlag::Arrived, 0);
  sync.wait_all(ShmFlag::Arrived, 0);
  check_same_call(comm, sync, "shm allreduce");
  // Every rank reduces the p staged copies in rank order, in one pass; the pointer list
  // lives in the communicator's scratch (no allocation per call).
  const auto p = static_cast<std::size_t>(sync.ranks());
  auto* staged = reinterpret_cast<const T**>(comm.scratch(p * sizeof(const T*)).data());
  for (std::size_t k = 0; k < p; ++k) {
    staged[k] = reinterpret_cast<const T*>(w.staging(static_cast<int>(k), sync.round(0)));
  }
  T* const out = data.data();
  reduce_to_all<T>(std::span<const T* const>(staged, p), std::span<T* const>(&out, 1),
                   data.size(), op);
  sync.finish(1);
}

// Every rank's buffer is in the window: owner j reduces slice j of all of them and writes
// the result into all of them, in one pass (reduce_to_all: every input and output one
// stream).
template <class T>
void in_window_path(ShmSync& sync, std::span<const T* const> in, std::size_t count,
                    ReduceOp op) {
  const int p = sync.ranks();
  const Slice mine = even_slice(count, p, sync.rank());
  std::vector<const T*> from(in.size());
  std::vector<T*> to(in.size());
  for (std::size_t k = 0; k < in.size(); ++k) {
    from[k] = in[k] + mine.begin;
    // The owner is the only rank that touches these elements during the call; the buffers
    // are writable through the window (SharedBuffer memory of each rank).
    to[k] = const_cast<T*>(in[k]) + mine.begin;
  }
  reduce_to_all<T>(from, to, mine.size, op);
  sync.set(ShmFlag::Reduced, 0);
  sync.wait_all(ShmFlag::Reduced, 0);
  sync.finish(1);
}

template <class T>
void rounds_path(const Communicator& comm, ShmSync& sync, std::span<T> data, ReduceOp op,
                 bool mine_in_window) {
  const int p = sync.ranks();
  std::vector<Slice> slices(static_cast<std::size_t>(p));
  for (int j = 0; j < p; ++j) slices[static_cast<std::size_t>(j)] = even_slice(data.size(), p, j);
  ShmRounds<T> rounds(sync, std::move(slices));
  // This rank's own piece of each round is not staged: as its owner it reads the piece
  // where it is, writes the result there and into its result area for the others, and
  // gathers only the others' pieces (at p = 2, 4N bytes of traffic per rank, not 5.5N).
  const int me = sync.rank();
  const T* input = mine_in_window ? nullptr : data.data();
  rounds.stage(0, input, me);
  sync.wait_all(ShmFlag::Arrived, 0);
  check_same_call(comm, sync, "shm allreduce");
  int shared = 0;
  std::vector<const T*> in = buffers_in_window<T>(sync, &shared);
  if (shared == p) return in_window_path<T>(sync, in, data.size(), op);
  in[static_cast<std::size_t>(me)] = data.data();
  for (std::size_t r = 0; r < rounds.rounds(); ++r) {
    rounds.combine(r, in, data.data() + rounds.begin(me, r), op, /*publish=*/true);
    // Stage the next round before gathering this one: the owners find it ready.
    if (r + 1 < rounds.rounds()) rounds.stage(r + 1, input, me);
    rounds.gather(r, {}, data.data(), /*skip=*/me);
  }
  sync.finish(rounds.rounds());
}

}  // namespace

template <Reducible T>
void allreduce_shm(const Communicator& comm, std::span<T> data, ReduceOp op) {
  if (!comm.node_layout().one_node()) {
    throw InvalidArgument(fmt::format(
        "the shm allreduce needs every rank on one node, but the {} ranks are on {} nodes "
        "(use hier or ring)",
        comm.size(), comm.node_layout().nodes));
  }
  if (comm.size() == 1) return;
  SharedWindows& windows = shared_windows(comm);
  ShmSync sync(comm, windows);
  const bool small = data.size_bytes() <= std::min(kSmallBytes, windows.current().stage_bytes());
  const std::optional<SharedLocation> where =
      small ? std::nullopt : windows.locate(data.data(), data.size_bytes());
  sync.announce({.count = static_cast<std::int64_t>(data.size()),
                 .type = static_cast<std::int32_t>(data_type_of<T>),
                 .op = static_cast<std::int32_t>(op),
                 .kind = static_cast<std::int32_t>(ShmKind::Allreduce),
                 .generation = where ? where->generation : -1,
                 .offset = where ? where->offset : 0});
  if (small) return small_path(comm, sync, data, op);
  rounds_path(comm, sync, data, op, where.has_value());
}

}  // namespace ringdp::detail

namespace ringdp::testing {

void set_shm_small_bytes(std::size_t bytes) noexcept {
  detail::small_override.store(bytes, std::memory_order_relaxed);
}

std::size_t shm_small_bytes() noexcept {
  const std::size_t set = detail::small_override.load(std::memory_order_relaxed);
  return set != 0 ? set : detail::kSmallBytes;
}

}  // namespace ringdp::testing

namespace ringdp::detail {

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_shm<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
