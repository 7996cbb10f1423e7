#pragma once
/// \file
/// The library's own communicator: a duplicate of the caller's, so that ringdp's messages
/// never match the caller's.

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "ringdp/comm/node.hpp"
#include "ringdp/comm/stall.hpp"

namespace ringdp {

namespace detail {
// The stall inspector's per-communicator state (sequence number, report channel); defined
// and used inside the library only (lib/comm/stall_state.hpp).
struct StallState;
struct StallStateDeleter {
  void operator()(StallState* state) const noexcept;
};
struct StallAccess;
// The ranks of this communicator's node, their layout and shared memory
// (lib/comm/node_state.hpp).
struct NodeState;
struct NodeStateDeleter {
  void operator()(NodeState* state) const noexcept;
};
struct NodeAccess;
}  // namespace detail

/// Owns an MPI_Comm_dup of a caller's communicator, with MPI_ERRORS_RETURN set on it so
/// that MPI errors come back as ringdp::MpiError, a second duplicate on which the stall
/// inspector (stall.hpp) sends its reports, and the communicator of the ranks on this
/// rank's node (node.hpp), with the shared memory its collectives use. Move-only.
/// Construction, split() and barrier() are collective over the communicator; the
/// accessors are local.
class Communicator {
 public:
  /// Duplicates `comm` (collective over `comm`), then agrees on the ranks' RINGDP_*
  /// settings (agree_on_settings(): a malformed variable on any rank, or one that differs
  /// between ranks, throws the same InvalidArgument on every rank). Check mode starts on
  /// when RINGDP_CHECK=1.
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD);
  ~Communicator();

  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  /// This process's rank in the communicator.
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// Number of ranks in the communicator.
  [[nodiscard]] int size() const noexcept { return size_; }
  /// How the ranks share nodes (found when the communicator was built). Local.
  [[nodiscard]] const NodeLayout& node_layout() const noexcept;
  /// The duplicated handle ringdp communicates on (owned by this object; do not free).
  [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }

  /// Collective: ranks passing the same `color` form a new communicator, ordered by `key`.
  [[nodiscard]] Communicator split(int color, int key) const;
  /// Collective: another duplicate of the same group, for a part of a program that must not
  /// match this one's messages (the Trainer and its GradientReducer each hold one). It
  /// shares this communicator's stall report channel, so rank 0 waiting on one of them also
  /// hears from ranks waiting on the other; use the two from one thread at a time. Check
  /// mode is copied.
  [[nodiscard]] Communicator duplicate() const;
  /// Collective barrier.
  void barrier() const;

  /// Check mode: collectives verify first that every rank passed the same count, type and
  /// operation, and throw a clear Error on every rank when one differs. Costs one small
  /// reduction per call; off by default. Set it to the same value on every rank.
  [[nodiscard]] bool check_mode() const noexcept { return check_mode_; }
  void set_check_mode(bool on) noexcept { check_mode_ = on; }

  /// Scratch memory for the collectives on this communicator: at least `bytes` bytes,
  /// 64-byte aligned, contents unspecified, valid until the next call. Kept across calls
  /// (it only grows), so that repeated collectives do not page-fault fresh memory each
  /// time. Local; not thread-safe (like the collectives themselves, use a communicator
  /// from one thread at a time). Throws std::bad_alloc when memory runs out.
  [[nodiscard]] std::span<std::byte> scratch(std::size_t bytes) const;

  /// Number of collectives started on this communicator so far: the sequence number stall
  /// reports name ("allreduce #12"). Ranks that made the same calls hold the same count.
  /// Local; read it from the thread that runs the collectives.
  [[nodiscard]] std::uint64_t collective_count() const noexcept;

  /// Names what this rank is doing in stall reports of this communicator's collectives.
  /// Local, no allocation; thread-safe (one thread may set it while another runs a
  /// collective; a report taken at that moment may mix old and new fields).
  void set_stall_context(const StallContext& context) noexcept;
  [[nodiscard]] StallContext stall_context() const noexcept;

 private:
  friend struct detail::StallAccess;
  friend struct detail::NodeAccess;
  struct Scratch;
  struct ScratchDeleter {
    void operator()(Scratch* scratch) const noexcept;
  };

  struct Adopt {};
  // Takes ownership of `owned`; its stall state reports through `parent`'s channel when
  // given, through a channel of its own otherwise.
  Communicator(Adopt, MPI_Comm owned, const Communicator* parent = nullptr);
  void reset() noexcept;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = -1;
  int size_ = 0;
  bool check_mode_ = false;
  mutable std::unique_ptr<Scratch, ScratchDeleter> scratch_;
  std::unique_ptr<detail::StallState, detail::StallStateDeleter> stall_;
  std::unique_ptr<detail::NodeState, detail::NodeStateDeleter> node_;
};

}  // namespace ringdp
