#pragma once
// The shared memory of a communicator's node: one MPI_Win_allocate_shared window, in which
// every rank of the node has a segment the others can read and write:
//
//   [ control: the rank's flags (ShmControl), one page ]
//   [ staging: 2 x (a call announcement, then stage_bytes where the rank copies its input) ]
//   [ result:  2 x stage_bytes, where the rank, as owner of a slice, puts the reduction ]
//   [ arena:   SharedBuffer allocations (their memory is in the window, so no copy-in) ]
//
// Staging and result come in two copies, used by the parity of the round, so that one
// round can be filled while the other is read. The window is "grown" by making a new,
// larger generation: a SharedBuffer keeps the generation it lives in alive, and a
// generation no rank uses any more is freed at the next allocation. Making and freeing a
// generation is collective over the node (MPI_Win_allocate_shared / MPI_Win_free), and is
// decided from values every rank shares (an agreed allocation size, agreed emptiness), so
// every rank of the node makes the same calls. Internal to the library.

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace ringdp {
class Communicator;
}

namespace ringdp::detail {

// One flag per 128 bytes: x86 CPUs fetch 64-byte lines in adjacent pairs, so flags of
// different writers 64 bytes apart would still bounce between cores together.
inline constexpr std::size_t kFlagLine = 128;

// What a rank announces about its call, read by the node's other ranks once they have seen
// it arrive: so that every rank takes the same path, and a call that differs between ranks
// is the same error on every rank instead of a hang.
struct alignas(kFlagLine) ShmCall {
  std::int64_t count = 0;  // elements (of the whole buffer)
  std::int32_t type = 0;   // DataType
  std::int32_t op = -1;    // ReduceOp, or -1
  std::int32_t kind = 0;   // which collective (shm_sync.hpp's ShmKind)
  std::int32_t unused = 0;
  std::int64_t generation = -1;  // window generation holding the caller's buffer, or -1
  std::int64_t offset = 0;       // the buffer's byte offset in that generation's arena
};

// The flags of one rank, at the start of its segment: monotonically increasing counters
// (continued, never reset, when the window grows), each written by this rank only, each
// on a line of its own.
struct ShmControl {
  alignas(kFlagLine) std::uint64_t arrived;  // this rank's input of round t is there: t + 1
  alignas(kFlagLine) std::uint64_t reduced;  // this rank, as owner, finished round t: t + 1
  alignas(kFlagLine) std::uint64_t copied;   // this rank is done with round t's results: t + 1
};

// One window: a segment per rank of the node, laid out as above.
class WindowGeneration {
 public:
  // Collective over `node`. `round`: the counters' current value, written into this rank's
  // flags so that they continue (never restart) in the new window. Throws MpiError.
  WindowGeneration(MPI_Comm node, int local_rank, int local_size, std::int64_t id,
                   std::size_t stage_bytes, std::size_t arena_bytes, std::uint64_t round);
  ~WindowGeneration();  // MPI_Win_free (collective over the node) unless MPI is finalized
  WindowGeneration(const WindowGeneration&) = delete;
  WindowGeneration& operator=(const WindowGeneration&) = delete;

  [[nodiscard]] std::int64_t id() const noexcept { return id_; }
  [[nodiscard]] std::size_t stage_bytes() const noexcept { return stage_bytes_; }
  [[nodiscard]] std::size_t arena_bytes() const noexcept { return arena_bytes_; }

  [[nodiscard]] ShmControl& control(int rank) const noexcept {
    return *reinterpret_cast<ShmControl*>(base_[static_cast<std::size_t>(rank)]);
  }
  // Rank `rank`'s announcement of the call that starts at `round`: on the line before its
  // staging area of that parity, so that a reader of a small call's data finds both in
  // adjacent lines (it is data, written before the flag that says it is there).
  [[nodiscard]] ShmCall& call(int rank, std::uint64_t round) const noexcept {
    return *reinterpret_cast<ShmCall*>(base_[static_cast<std::size_t>(rank)] + kControlBytes +
                                       (round & 1) * (kFlagLine + stage_bytes_));
  }
  // Rank `rank`'s staging (result) area of the parity of `round`.
  [[nodiscard]] std::byte* staging(int rank, std::uint64_t round) const noexcept {
    return reinterpret_cast<std::byte*>(&call(rank, round)) + kFlagLine;
  }
  [[nodiscard]] std::byte* result(int rank, std::uint64_t round) const noexcept {
    return base_[static_cast<std::size_t>(rank)] + kControlBytes + 2 * (kFlagLine + stage_bytes_) +
           (round & 1) * stage_bytes_;
  }
  [[nodiscard]] std::byte* arena(int rank) const noexcept {
    return base_[static_cast<std::size_t>(rank)] + kControlBytes + 2 * (kFlagLine + stage_bytes_) +
           2 * stage_bytes_;
  }

  // The arena's bump allocator and the allocations alive on this rank (local).
  std::size_t arena_used = 0;
  std::int64_t live = 0;

  static constexpr std::size_t kControlBytes = 4096;

 private:
  MPI_Win win_ = MPI_WIN_NULL;
  std::vector<std::byte*> base_;  // every rank's segment, in this process's address space
  std::int64_t id_;
  std::size_t stage_bytes_;
  std::size_t arena_bytes_;
};

// Where a caller's buffer lies in the window: a generation and a byte offset in its arena.
struct SharedLocation {
  std::int64_t generation = -1;
  std::int64_t offset = 0;
};

// The generations of a node's window; the last one is current (its control, staging and
// result areas serve the node-local collectives).
class SharedWindows {
 public:
  // Collective over `node`: makes the first generation (no arena yet).
  SharedWindows(MPI_Comm node, int local_rank, int local_size, std::size_t stage_bytes);

  [[nodiscard]] WindowGeneration& current() const noexcept { return *generations_.back(); }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  // The generation `id`, or null when this rank holds no such generation.
  [[nodiscard]] const WindowGeneration* generation(std::int64_t id) const noexcept;
  // Where [data, data + bytes) lies in an arena of this rank's segments, if it does.
  [[nodiscard]] std::optional<SharedLocation> locate(const void* data,
                                                     std::size_t bytes) const noexcept;

  // The counters' value after the last node-local collective: the same on every rank of
  // the node (each collective advances it by the same number of rounds everywhere).
  std::uint64_t round = 0;
  // Every rank's `arrived` was seen at least this high (so every rank is done reading
  // anything of round arrived_all - 2): lets a collective skip a wait it knows is over.
  std::uint64_t arrived_all = 0;

 private:
  friend struct SharedAllocator;
  MPI_Comm node_;
  int rank_;
  int size_;
  std::size_t stage_bytes_;
  std::int64_t next_id_ = 0;
  std::vector<std::shared_ptr<WindowGeneration>> generations_;
};

// One allocation in a window's arena: the generation it keeps alive, and its address.
struct SharedPlace {
  std::shared_ptr<WindowGeneration> generation;
  std::byte* data = nullptr;
};

// Collective over `comm`: every rank asks for the same `bytes` (else every rank throws the
// same MismatchError naming the ranks), and gets `bytes` in its segment of the window, at
// the same offset on every rank of a node. Grows the window (a new generation) when the
// current one has no room, and frees the generations no rank uses any more.
SharedPlace allocate_shared(const Communicator& comm, std::size_t bytes);

// Local: gives an allocation back (the generation is freed at a later allocation, or with
// the communicator, once no rank uses it).
void release_shared(WindowGeneration& generation) noexcept;

}  // namespace ringdp::detail
