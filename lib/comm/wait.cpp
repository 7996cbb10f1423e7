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

#include "comm/wait.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/error.hpp"
#include "stall_state.hpp"
#include "stall_watch.hpp"

namespace ringdp::detail {
namespace {

constexpr int kSpinPolls = 16;
constexpr unsigned kPollsPerTick = 16;
// Polls of a shared-memory flag before a wait starts yielding. A poll that finds the flag
// unchanged reads a line from this core's cache and pauses (about 50 ns), so this is some
// tens of microseconds: longer than a peer takes for one piece of work when it holds a
// core (a 256 KiB staging round is copied in about 20 us), shorter than the time slice a
// descheduled peer waits for when ranks outnumber cores.
constexpr int kShmSpinPolls = 1024;

inline void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// fail_nth_wait(): waits left before the one that fails (0: hook off).
std::atomic<std::uint64_t> g_waits_before_failure{0};

// The test hook: throws at the wait it counts down to.
void count_down_to_failure() {
  std::uint64_t left = g_waits_before_failure.load(std::memory_order_relaxed);
  while (left != 0 && !g_waits_before_failure.compare_exchange_weak(left, left - 1)) {
  }
  if (left == 1) {
    throw MpiError("MPI_Test", MPI_ERR_OTHER, "failure injected by ringdp::testing::fail_nth_wait");
  }
}

// Set by PacedWaits for its thread: while *t_computing is true, waits sleep between polls.
thread_local const std::atomic<bool>* t_computing = nullptr;

bool paced() noexcept {
  return t_computing != nullptr && t_computing->load(std::memory_order_relaxed);
}

template <class Poll>
void watched_wait(const Communicator& comm, Poll&& poll) {
  for (int i = 0; i < kSpinPolls; ++i) {
    if (poll()) return;
  }
  StallWatch watch(comm);
  for (unsigned i = 1;; ++i) {
    if (poll()) return;
    // A paced wait ticks every poll: its polls are far apart, and the inspector's clock
    // must still see the time pass.
    if (paced()) {
      watch.tick();
      std::this_thread::sleep_for(std::chrono::microseconds(kPacedPollMicroseconds));
      continue;
    }
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
  // RINGDP_TEST_STALL_* (ringdp/comm/settings.hpp): a malformed value leaves the hook off
  // here and is reported when a Communicator is built.
  const Settings& s = read_settings().values;
  return {.rank = s.test_stall_rank, .seconds = s.test_stall_seconds, .step = s.test_stall_step};
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

PacedWaits::PacedWaits(const std::atomic<bool>* computing) noexcept {
  t_computing = computing;
}

PacedWaits::~PacedWaits() { t_computing = nullptr; }

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
  if (g_waits_before_failure.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    count_down_to_failure();
  }
  watched_wait(comm, [&] {
    int done = 0;
    RINGDP_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    return done != 0;
  });
}

void wait_until_polling(const Communicator& comm, bool (*ready)(void*), void* context) {
  for (int i = 0; i < kShmSpinPolls && !paced(); ++i) {
    cpu_pause();
    if (ready(context)) return;
  }
  StallWatch watch(comm);
  for (unsigned i = 1;; ++i) {
    if (ready(context)) return;
    if (paced()) {
      watch.tick();
      std::this_thread::sleep_for(std::chrono::microseconds(kPacedPollMicroseconds));
      continue;
    }
    if (i % kPollsPerTick == 0) watch.tick();
    std::this_thread::yield();
  }
}

void wait_all(const Communicator& comm, std::span<MPI_Request> requests) {
  if (g_waits_before_failure.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    count_down_to_failure();
  }
  const int count = checked_mpi_count(requests.size());
  watched_wait(comm, [&] {
    int done = 0;
    RINGDP_MPI_CHECK(MPI_Testall(count, requests.data(), &done, MPI_STATUSES_IGNORE));
    return done != 0;
  });
}

}  // namespace ringdp::detail

namespace ringdp::testing {

void fail_nth_wait(std::uint64_t nth) noexcept {
  detail::g_waits_before_failure.store(nth, std::memory_order_relaxed);
}

std::size_t stall_sends_in_flight(const Communicator& comm) noexcept {
  const detail::StallState* state = detail::StallAccess::state(comm);
  return state == nullptr ? 0 : state->channel->sends.size();
}

}  // namespace ringdp::testing
