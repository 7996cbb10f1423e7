#pragma once
// The stall inspector's state of one Communicator, its report channel and its messages.
// Internal to the library: the wait helper (wait.cpp, stall_watch.cpp) and communicator.cpp.

#include <mpi.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::detail {

// The inspector's clock: CLOCK_MONOTONIC_COARSE on Linux, which ticks every 1-4 ms (plenty
// for limits in seconds) and reads the kernel's cached time without touching the hardware
// counter: a few ns on bare metal, where CLOCK_MONOTONIC costs tens (on the loaded
// development VM: 70-140 ns against 300-400 ns). Steady, like std::chrono::steady_clock.
struct StallClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<StallClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts{};
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};

// Tags of the report channel. It is a communicator of its own, so these never meet
// another message of the library or of the caller.
constexpr int kReportTag = 1;  // a waiting rank -> rank 0
constexpr int kAnswerTag = 2;  // rank 0 -> a rank whose report it has read

// One message of the report channel, sent as bytes (every rank runs the same binary).
// A report says where the sender waits; an answer carries the call it answers.
struct StallMessage {
  std::int64_t communicator = 0;  // which communicator of the channel (StallState::id)
  std::int64_t sequence = 0;
  std::int64_t step = -1;
  std::int64_t first_bucket = -1;
  std::int64_t buckets = 0;
  double waited = 0.0;  // seconds the sender had waited when it sent the report
  char collective[24] = {};
};

// A send of the report channel in flight, with the buffer MPI reads it from (which must
// stay put until the send completes: hence one heap block per send).
struct PendingSend {
  MPI_Request request = MPI_REQUEST_NULL;
  StallMessage message;
};

// What rank 0 knows of another rank's latest report.
struct StallRecord {
  StallMessage report;
  StallClock::time_point received{};
  bool valid = false;
};

// The report channel: a duplicate of a communicator, shared by that communicator and the
// duplicates made from it with Communicator::duplicate() (the trainer's and the gradient
// reducer's), so that rank 0 waiting on one of them also hears from ranks waiting on
// another. Used by one thread at a time (the one inside a collective of one of them).
struct StallChannel {
  MPI_Comm side = MPI_COMM_NULL;
  int rank = -1;
  int size = 0;
  std::int64_t next_id = 0;                         // id of the next communicator to join
  std::vector<std::unique_ptr<PendingSend>> sends;  // reports and answers in flight
  std::vector<StallRecord> records;                 // rank 0: per rank; sized at first use
  std::vector<std::uint64_t> answered;  // per communicator id: last sequence rank 0 answered

  StallChannel() = default;
  StallChannel(const StallChannel&) = delete;
  StallChannel& operator=(const StallChannel&) = delete;
  ~StallChannel();  // frees the duplicate (unless MPI is finalized); never throws

  // Tests the sends in flight and forgets those that completed. Throws MpiError.
  void settle_sends();
  [[nodiscard]] std::uint64_t answered_for(std::int64_t id) const noexcept {
    const auto i = static_cast<std::size_t>(id);
    return i < answered.size() ? answered[i] : 0;
  }
};

// The inspector's state of one communicator.
struct StallState {
  std::shared_ptr<StallChannel> channel;
  std::int64_t id = 0;  // this communicator's number on the channel, the same on every rank
  // Written and read only by the thread running this communicator's collectives.
  std::uint64_t sequence = 0;        // collectives started; the current one's number
  const char* collective = nullptr;  // name of the collective running (a literal), or null
  std::uint64_t reported = 0;        // sequence this rank last reported (0: none)
  std::uint64_t noticed = 0;         // sequence this rank printed its "rank 0 silent" line for
  // The caller's context: set from any thread, read by the one waiting.
  std::atomic<std::int64_t> step{-1};
  std::atomic<std::int64_t> first_bucket{-1};
  std::atomic<std::int64_t> buckets{0};

  [[nodiscard]] StallContext context() const noexcept {
    return {.step = step.load(std::memory_order_relaxed),
            .first_bucket = first_bucket.load(std::memory_order_relaxed),
            .buckets = buckets.load(std::memory_order_relaxed)};
  }
};

// The one door from the library into a Communicator's stall state (a friend of it).
struct StallAccess {
  static StallState* state(const Communicator& comm) noexcept { return comm.stall_.get(); }
};

// Creates the state of a communicator with a report channel of its own: collective over
// `comm` (an MPI_Comm_dup). Throws MpiError.
std::unique_ptr<StallState, StallStateDeleter> make_stall_state(MPI_Comm comm, int rank, int size);

// Creates the state of a duplicate that reports through `parent`'s channel. Local.
std::unique_ptr<StallState, StallStateDeleter> make_stall_state(const StallState& parent);

}  // namespace ringdp::detail
