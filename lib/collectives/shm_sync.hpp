#pragma once
// The flags through which the ranks of one node hand each other work in their shared
// window (lib/comm/shared_window.hpp), and the waits on them.
//
// The rules (after MPICH's release-gather and Open MPI's xhc):
//  - every flag is a 64-bit counter written by one rank only, on a 128-byte line of its
//    own, and it only ever grows: it counts the window's rounds (a collective uses one or
//    more), so a value is never seen twice and no flag is ever reset;
//  - data is written first, then the counter with a release store; a reader waits for the
//    counter with acquire loads, then reads the data;
//  - a wait spins a bounded number of times with a pause, then yields the core at every
//    poll, watched by the stall inspector (detail::wait_until).
//
// Round t of a window uses the staging and result areas of parity t % 2. Three counters
// per rank say how far it got: `arrived` (its input of round t is readable: t + 1),
// `reduced` (as owner of a slice it has read every input of round t and written its result:
// t + 1) and `copied` (it is done reading round t's results: t + 1). Before a rank writes
// an area of parity t % 2 it waits until every rank is done with round t - 2, which used
// the same area. Every collective starts with the wait for round first - 2 (announce()),
// which covers the announcements and staging areas a slower rank may still read; a rank
// that ran ahead (one that owns no slice passes a round without waiting) waits there.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "comm/shared_window.hpp"
#include "comm/wait.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/types.hpp"

namespace ringdp::detail {

// Which collective a call announces (ShmCall::kind).
enum class ShmKind : std::int32_t {
  Allreduce = 1,
  ReduceScatter = 2,
  Allgather = 3,
  NodeReduce = 4,  // hierarchical, inside the node: to the owners of the slices
  NodeGather = 5,  // hierarchical, inside the node: from the owners of the slices
};

enum class ShmFlag { Arrived, Reduced, Copied };

// One node-local collective on the window's current generation, from its first round
// (the window's round count when it starts) to its last.
class ShmSync {
 public:
  ShmSync(const Communicator& comm, SharedWindows& windows)
      : comm_(comm),
        windows_(windows),
        window_(windows.current()),
        me_(windows.rank()),
        ranks_(windows.size()),
        first_(windows.round) {}

  [[nodiscard]] const Communicator& comm() const noexcept { return comm_; }
  [[nodiscard]] const WindowGeneration& window() const noexcept { return window_; }
  [[nodiscard]] const SharedWindows& windows() const noexcept { return windows_; }
  [[nodiscard]] int rank() const noexcept { return me_; }
  [[nodiscard]] int ranks() const noexcept { return ranks_; }
  // The window round of this collective's round r.
  [[nodiscard]] std::uint64_t round(std::uint64_t r) const noexcept { return first_ + r; }

  // Writes this rank's announcement of the call (before its first arrival), once every
  // rank is done with round first - 2: a rank says `reduced` for a round only after it has
  // read the announcements of the call that round belongs to, and so has every rank read
  // the announcement of the same parity this one replaces. The same wait frees the staging
  // area of this parity (its readers, the owners of round first - 2, are done with it).
  // When every rank was already seen arriving at round first - 1 (the usual case: the
  // collective before ended with such a wait), every rank is done with round first - 2.
  void announce(const ShmCall& call) {
    if (windows_.arrived_all < first_) wait_reuse(ShmFlag::Reduced, 0);
    window_.call(me_, first_) = call;
  }
  [[nodiscard]] const ShmCall& call_of(int rank) const noexcept {
    return window_.call(rank, first_);
  }

  // This rank's counter `flag` := round(r) + 1 (release).
  void set(ShmFlag flag, std::uint64_t r) noexcept {
    std::atomic_ref<std::uint64_t>(counter(me_, flag))
        .store(first_ + r + 1, std::memory_order_release);
  }
  // Waits until every rank's `flag` says it finished round(r) (is >= round(r) + 1).
  void wait_all(ShmFlag flag, std::uint64_t r) {
    wait_all_at_least(flag, first_ + r + 1);
    if (flag == ShmFlag::Arrived) windows_.arrived_all = std::max(windows_.arrived_all, first_ + r + 1);
  }
  // Waits until every rank is done with round(r) - 2, whose areas round(r) reuses (no wait
  // when there is no such round).
  void wait_reuse(ShmFlag flag, std::uint64_t r) {
    if (first_ + r >= 2) wait_all_at_least(flag, first_ + r - 1);
  }

  // The end of a collective that used `rounds` rounds: this rank's counters all say so
  // (some collectives leave a flag unused), and the window's count moves on.
  void finish(std::uint64_t rounds) noexcept {
    for (ShmFlag flag : {ShmFlag::Arrived, ShmFlag::Reduced, ShmFlag::Copied}) {
      // A store to a line the others read costs a transfer: only where the value moves.
      if (std::atomic_ref<std::uint64_t>(counter(me_, flag)).load(std::memory_order_relaxed) <
          first_ + rounds) {
        set(flag, rounds - 1);
      }
    }
    windows_.round = first_ + rounds;
  }

 private:
  std::uint64_t& counter(int rank, ShmFlag flag) const noexcept {
    ShmControl& c = window_.control(rank);
    return flag == ShmFlag::Arrived ? c.arrived : flag == ShmFlag::Reduced ? c.reduced : c.copied;
  }

  void wait_all_at_least(ShmFlag flag, std::uint64_t value) {
    // Ranks are checked in order from the first not yet there, which is remembered across
    // polls: a poll reads only lines that have not reached `value`.
    int next = 0;
    wait_until(comm_, [&] {
      for (; next < ranks_; ++next) {
        if (std::atomic_ref<std::uint64_t>(counter(next, flag)).load(std::memory_order_acquire) <
            value) {
          return false;
        }
      }
      return true;
    });
  }

  const Communicator& comm_;
  SharedWindows& windows_;
  const WindowGeneration& window_;
  int me_;
  int ranks_;
  std::uint64_t first_;
};

}  // namespace ringdp::detail

namespace ringdp::detail {

// After every rank's first arrival: checks that every rank of the node announced the same
// call (collective, count, type, op). When one differs, every rank of the node ends the
// collective's first round and throws the same MismatchError, naming the first rank (in
// communicator numbering) whose call differs from the node's first rank's. `what` names
// the collective ("shm allreduce").
void check_same_call(const Communicator& comm, ShmSync& sync, const char* what);

}  // namespace ringdp::detail
