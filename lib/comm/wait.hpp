#pragma once
/// \file
/// The library's one wait helper: every wait of a ringdp collective goes through it, so
/// that the stall inspector (ringdp/comm/stall.hpp) watches it. Internal to the library
/// (lib/ is not installed).

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <span>
#include <type_traits>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::detail {

/// Marks one collective on `comm` for the stall inspector: bumps the communicator's
/// sequence number and names the collective (`name`: a string literal) until the scope
/// ends. Opened at the entry of every public collective, on every rank, so that all ranks
/// number their collectives alike. Local, no allocation, no MPI call.
///
/// Test hook (test-only, documented in README): with RINGDP_TEST_STALL_RANK=r and
/// RINGDP_TEST_STALL_SECONDS=s, world rank r sleeps s seconds on entering its first
/// collective whose communicator's StallContext step is >= RINGDP_TEST_STALL_STEP
/// (default -1: its first collective). Once per process.
class CollectiveScope {
 public:
  CollectiveScope(const Communicator& comm, const char* name) noexcept;
  ~CollectiveScope();
  CollectiveScope(const CollectiveScope&) = delete;
  CollectiveScope& operator=(const CollectiveScope&) = delete;

 private:
  StallState* state_;
  const char* previous_;
};

/// Paces the waits of the calling thread while another thread of this rank computes.
///
/// While the scope lives and `*computing` is true, a wait of this thread that is not over
/// after its first polls sleeps about kPacedPollMicroseconds between polls instead of
/// spinning, so that the computing thread keeps its core; once `*computing` is false the
/// wait spins again (the computing thread is then waiting for the result itself). For a
/// progress thread that reduces while its rank's main thread computes: with one core per
/// rank a spinning poller takes half the core from the computation, while data keeps
/// arriving meanwhile (socket buffers, shared-memory queues) and is picked up at the next
/// poll. Scopes do not nest. Local, no MPI call.
class PacedWaits {
 public:
  explicit PacedWaits(const std::atomic<bool>* computing) noexcept;
  ~PacedWaits();
  PacedWaits(const PacedWaits&) = delete;
  PacedWaits& operator=(const PacedWaits&) = delete;
};

/// Sleep between two polls of a paced wait (see PacedWaits).
inline constexpr int kPacedPollMicroseconds = 50;

/// Completes `request` like MPI_Wait (status ignored): polls it with MPI_Test, first
/// spinning as MPI_Wait does, then, once the wait lasts, yielding the core and letting the
/// stall inspector report, answer and abort as its settings say. The thread that calls it
/// is the only one that touches MPI meanwhile (MPI_THREAD_SERIALIZED is enough). Throws
/// MpiError.
void wait(const Communicator& comm, MPI_Request& request);

/// Completes every request like MPI_Waitall (statuses ignored), watched like wait().
void wait_all(const Communicator& comm, std::span<MPI_Request> requests);

/// Waits until `ready()` returns true, for flags that other ranks of the node set in shared
/// memory: polls with a pause instruction a bounded number of times, then yields the core
/// at every poll (ranks may outnumber cores: a spinning rank would keep the one it waits
/// for off the core), watched by the stall inspector like wait(), and paced like it inside
/// a PacedWaits scope. `ready` must be cheap and call no MPI. Throws MpiError (from the
/// inspector's messages).
template <class Ready>
void wait_until(const Communicator& comm, Ready&& ready) {
  if (ready()) return;
  using Fn = std::remove_reference_t<Ready>;
  wait_until_polling(comm, [](void* fn) { return (*static_cast<Fn*>(fn))(); }, &ready);
}

/// wait_until() past its first check.
void wait_until_polling(const Communicator& comm, bool (*ready)(void*), void* context);

}  // namespace ringdp::detail
