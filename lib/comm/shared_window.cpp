// The node's shared window: its generations, and SharedBuffer allocations in their arenas.

#include "comm/shared_window.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "comm/node_state.hpp"
#include "comm/wait.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"

namespace ringdp::detail {
namespace {

constexpr std::size_t kPage = 4096;

std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }

}  // namespace

WindowGeneration::WindowGeneration(MPI_Comm node, int local_rank, int local_size, std::int64_t id,
                                   std::size_t stage_bytes, std::size_t arena_bytes,
                                   std::uint64_t round)
    : base_(static_cast<std::size_t>(local_size), nullptr),
      id_(id),
      stage_bytes_(stage_bytes),
      arena_bytes_(arena_bytes) {
  static_assert(sizeof(ShmControl) <= kControlBytes);
  // One page more than the layout needs: Open MPI's segments need not start on a page (nor
  // on a cache line), and the layout below is placed from the segment's first page, so that
  // every flag has its own line and the staging areas and SharedBuffers start on pages.
  const std::size_t segment = kControlBytes + 2 * (kFlagLine + stage_bytes) + 2 * stage_bytes +
                              arena_bytes + kPage;
  // Each rank's segment on pages of its own (alloc_shared_noncontig), first touched by that
  // rank: on a NUMA machine its flags, staging and arena sit on its own memory.
  MPI_Info info = MPI_INFO_NULL;
  RINGDP_MPI_CHECK(MPI_Info_create(&info));
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  std::byte* mine = nullptr;
  const int rc =
      MPI_Win_allocate_shared(static_cast<MPI_Aint>(segment), 1, info, node, &mine, &win_);
  MPI_Info_free(&info);
  check_mpi(rc, "MPI_Win_allocate_shared");
  try {
    RINGDP_MPI_CHECK(MPI_Win_set_errhandler(win_, MPI_ERRORS_RETURN));
    for (int r = 0; r < local_size; ++r) {
      MPI_Aint size = 0;
      int unit = 0;
      std::byte* base = nullptr;
      RINGDP_MPI_CHECK(MPI_Win_shared_query(win_, r, &size, &unit, &base));
      // The same padding in every process: a rank's segment lies at the same offset of the
      // same shared file in every mapping, and mappings start on pages.
      const auto address = reinterpret_cast<std::uintptr_t>(base);
      base_[static_cast<std::size_t>(r)] = base + (round_up(address, kPage) - address);
    }
  } catch (...) {
    MPI_Win_free(&win_);
    throw;
  }
  // This rank's flags continue from the node's round count. The others read them only in
  // the next collective, and wait there for values above `round`, so they never act on
  // the page's initial contents.
  ShmControl& flags = control(local_rank);
  for (std::uint64_t* counter : {&flags.arrived, &flags.reduced, &flags.copied}) {
    std::atomic_ref<std::uint64_t>(*counter).store(round, std::memory_order_release);
  }
}

WindowGeneration::~WindowGeneration() {
  if (win_ == MPI_WIN_NULL || Environment::finalized()) return;
  if (MPI_Win_free(&win_) != MPI_SUCCESS) {
    std::fprintf(stderr, "ringdp: rank %d: MPI_Win_free of the node's shared window failed\n",
                 world_rank());
  }
}

SharedWindows::SharedWindows(MPI_Comm node, int local_rank, int local_size, std::size_t stage_bytes)
    : node_(node), rank_(local_rank), size_(local_size), stage_bytes_(stage_bytes) {
  generations_.push_back(
      std::make_shared<WindowGeneration>(node_, rank_, size_, next_id_++, stage_bytes_, 0, round));
}

const WindowGeneration* SharedWindows::generation(std::int64_t id) const noexcept {
  for (const auto& g : generations_) {
    if (g->id() == id) return g.get();
  }
  return nullptr;
}

std::optional<SharedLocation> SharedWindows::locate(const void* data,
                                                    std::size_t bytes) const noexcept {
  const auto* p = static_cast<const std::byte*>(data);
  for (const auto& g : generations_) {
    const std::byte* arena = g->arena(rank_);
    if (p >= arena && bytes <= g->arena_bytes() &&
        static_cast<std::size_t>(p - arena) <= g->arena_bytes() - bytes) {
      return SharedLocation{g->id(), p - arena};
    }
  }
  return std::nullopt;
}

// The collective part of an allocation, with access to SharedWindows' generations.
struct SharedAllocator {
  static SharedPlace allocate(const Communicator& comm, SharedWindows& w, std::size_t bytes);
  static void free_unused(const Communicator& comm, SharedWindows& w);
};

// Frees the generations no rank of the communicator uses: an allocation is collective, so
// all ranks decide on the same values (MPI_MIN of "unused here" over every rank).
void SharedAllocator::free_unused(const Communicator& comm, SharedWindows& w) {
  std::vector<std::int64_t> unused(w.generations_.size());
  for (std::size_t g = 0; g < unused.size(); ++g) unused[g] = w.generations_[g]->live == 0;
  MPI_Request request = MPI_REQUEST_NULL;
  RINGDP_MPI_CHECK(PMPI_Iallreduce(MPI_IN_PLACE, unused.data(), checked_mpi_count(unused.size()),
                                   MPI_INT64_T, MPI_MIN, comm.native(), &request));
  wait(comm, request);
  std::vector<std::shared_ptr<WindowGeneration>> kept;
  for (std::size_t g = 0; g < unused.size(); ++g) {
    const bool current = g + 1 == unused.size();
    if (current && unused[g] != 0) w.generations_[g]->arena_used = 0;  // all free: start over
    if (current || unused[g] == 0) kept.push_back(std::move(w.generations_[g]));
  }
  w.generations_ = std::move(kept);  // the dropped ones are freed here (MPI_Win_free)
}

SharedPlace SharedAllocator::allocate(const Communicator& comm, SharedWindows& w,
                                      std::size_t bytes) {
  const std::int64_t asked = static_cast<std::int64_t>(bytes);
  agree_equal(
      comm, std::span<const std::int64_t>(&asked, 1),
      [](const Disagreement& d) {
        return fmt::format(
            "SharedBuffer: ranks asked for different sizes: rank {} for {} bytes, rank 0 for {} "
            "bytes (ranks differing from rank 0: {}); every rank must allocate the same size",
            d.rank, d.theirs[0], d.reference[0], d.ranks_text());
      },
      ErrorKind::Mismatch);
  free_unused(comm, w);
  const std::size_t need = round_up(std::max<std::size_t>(bytes, 1), kPage);
  WindowGeneration* g = &w.current();
  if (g->arena_bytes() - g->arena_used < need) {
    // Grow: a new generation, at least twice the arena, which becomes the current one. The
    // old one stays while buffers live in it. Every rank computes the same size.
    const std::size_t arena = std::max(need, 2 * g->arena_bytes());
    auto grown = std::make_shared<WindowGeneration>(w.node_, w.rank_, w.size_, w.next_id_++,
                                                    w.stage_bytes_, arena, w.round);
    // A new window's areas have never been read: nothing to wait for before reusing them.
    w.arrived_all = w.round;
    if (g->live == 0 && g->arena_used == 0) w.generations_.pop_back();
    w.generations_.push_back(std::move(grown));
    g = &w.current();
  }
  SharedPlace place{w.generations_.back(), g->arena(w.rank_) + g->arena_used};
  g->arena_used += need;
  ++g->live;
  return place;
}

SharedPlace allocate_shared(const Communicator& comm, std::size_t bytes) {
  return SharedAllocator::allocate(comm, shared_windows(comm), bytes);
}

void release_shared(WindowGeneration& generation) noexcept { --generation.live; }

}  // namespace ringdp::detail
