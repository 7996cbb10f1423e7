// The wait helper every ringdp collective waits through, and the collective scope that
// numbers the collectives for the stall inspector.
//
// Why a polling loop instead of MPI_Wait: a rank blocked inside MPI_Wait cannot notice
// that it has waited a minute, nor tell anyone. MPI_Wait is itself a loop that drives
// MPI's progress engine until the request completes; MPI_Test drives the same engine once
// per call, so polling it costs the same while giving control back between polls.
//
// The fast path costs nothing measurable: a wait that is over within its first kSpinPolls
// polls (as most sends and many receives of a collective are) does nothing else, exactly
// like MPI_Wait. Only a longer wait makes a StallWatch, which reads a coarse clock
// (StallClock: no hardware counter, but still some 100 ns on the development VM, a
// measurable 15% of a 0.7 us recursive-doubling allreduce if paid by every wait), then
// again every kPollsPerTick polls, while it waits anyway, and after 10 ms yields the core
// at each poll. The spin phase must stay short, because a poll is not always fast: with
// Open MPI's mpi_yield_when_idle (set when ranks outnumber cores) every idle MPI_Test
// yields the core, and on a loaded machine 256 such polls were measured to take a second
// (which the inspector would not have counted). 16 polls hide at most some tens of ms.

#include "ringdp/detail/wait.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "ringdp/comm/error.hpp"
#include "ringdp/detail/mpi_check.hpp"
#include "stall_state.hpp"
#include "stall_watch.hpp"

namespace ringdp::detail {
namespace {

constexpr int kSpinPolls = 16;
constexpr unsigned kPollsPerTick = 16;

template <class Poll>
void watched_wait(const Communicator& comm, Poll&& poll) {
  for (int i = 0; i < kSpinPolls; ++i) {
    if (poll()) return;
  }
  StallWatch watch(comm);
  for (unsigned i = 1;; ++i) {
    if (poll()) return;
    if (i % kPollsPerTick == 0) watch.tick();
    if (watch.yielding()) std::this_thread::yield();
  }
}

// --- the test hook (RINGDP_TEST_STALL_*), test-only -------------------------------------

struct StallHook {
  int rank = -1;  // world rank that stalls; -1: hook off
  double seconds = 0.0;
  std::int64_t step = -1;
};

StallHook read_hook() {
  StallHook hook;
  const char* rank = std::getenv("RINGDP_TEST_STALL_RANK");
  const char* seconds = std::getenv("RINGDP_TEST_STALL_SECONDS");
  if (rank == nullptr || *rank == '\0' || seconds == nullptr || *seconds == '\0') return hook;
  const char* step = std::getenv("RINGDP_TEST_STALL_STEP");
  char* rank_end = nullptr;
  char* seconds_end = nullptr;
  char* step_end = nullptr;
  const long r = std::strtol(rank, &rank_end, 10);
  const double s = std::strtod(seconds, &seconds_end);
  const long long st = step != nullptr && *step != '\0' ? std::strtoll(step, &step_end, 10) : -1;
  if (*rank_end != '\0' || r < 0 || *seconds_end != '\0' || !(s > 0.0) ||
      (step_end != nullptr && *step_end != '\0')) {
    std::fprintf(stderr, "ringdp: ignoring malformed RINGDP_TEST_STALL_* variables\n");
    return hook;
  }
  hook.rank = static_cast<int>(r);
  hook.seconds = s;
  hook.step = st;
  return hook;
}

const StallHook& stall_hook() {
  static const StallHook hook = read_hook();
  return hook;
}

void maybe_stall(const StallState& state) noexcept {
  static std::atomic<bool> fired{false};
  const StallHook& hook = stall_hook();
  if (state.step.load(std::memory_order_relaxed) < hook.step) return;
  if (world_rank() != hook.rank || fired.exchange(true)) return;
  std::this_thread::sleep_for(std::chrono::duration<double>(hook.seconds));
}

}  // namespace

CollectiveScope::CollectiveScope(const Communicator& comm, const char* name) noexcept
    : state_(StallAccess::state(comm)), previous_(nullptr) {
  if (state_ == nullptr) return;
  previous_ = std::exchange(state_->collective, name);
  ++state_->sequence;
  if (stall_hook().rank >= 0) [[unlikely]] {
    maybe_stall(*state_);
  }
}

CollectiveScope::~CollectiveScope() {
  if (state_ != nullptr) state_->collective = previous_;
}

void wait(const Communicator& comm, MPI_Request& request) {
  watched_wait(comm, [&] {
    int done = 0;
    RINGDP_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    return done != 0;
  });
}

void wait_all(const Communicator& comm, std::span<MPI_Request> requests) {
  const int count = checked_mpi_count(requests.size());
  watched_wait(comm, [&] {
    int done = 0;
    RINGDP_MPI_CHECK(MPI_Testall(count, requests.data(), &done, MPI_STATUSES_IGNORE));
    return done != 0;
  });
}

std::size_t stall_sends_in_flight(const Communicator& comm) noexcept {
  const StallState* state = StallAccess::state(comm);
  return state == nullptr ? 0 : state->channel->sends.size();
}

}  // namespace ringdp::detail
