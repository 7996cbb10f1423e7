#pragma once
// The stall inspector's state of one Communicator, and the messages of its report channel.
// Internal to the library: the wait helper (wait.cpp, stall_watch.cpp) and communicator.cpp.

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::detail {

using StallClock = std::chrono::steady_clock;

// Tags of the report channel. It is a communicator of its own, so these never meet
// another message of the library or of the caller.
constexpr int kReportTag = 1;  // a waiting rank -> rank 0
constexpr int kAnswerTag = 2;  // rank 0 -> a rank whose report it has read

// One message of the report channel, sent as bytes (every rank runs the same binary).
// A report says where the sender waits; an answer carries the sequence it answers.
struct StallMessage {
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

struct StallState {
  MPI_Comm side = MPI_COMM_NULL;  // the report channel: a duplicate made with the Communicator
  int rank = -1;
  int size = 0;
  // Written and read only by the thread running this communicator's collectives.
  std::uint64_t sequence = 0;        // collectives started; the current one's number
  const char* collective = nullptr;  // name of the collective running (a literal), or null
  std::uint64_t reported = 0;        // sequence this rank last reported (0: none)
  std::uint64_t answered = 0;        // sequence rank 0 last answered for this rank
  std::uint64_t noticed = 0;         // sequence this rank printed its "rank 0 silent" line for
  std::vector<std::unique_ptr<PendingSend>> sends;  // reports and answers in flight
  std::vector<StallRecord> records;                 // rank 0: per rank; sized at first use
  // The caller's context: set from any thread, read by the one waiting.
  std::atomic<std::int64_t> step{-1};
  std::atomic<std::int64_t> first_bucket{-1};
  std::atomic<std::int64_t> buckets{0};

  [[nodiscard]] StallContext context() const noexcept {
    return {.step = step.load(std::memory_order_relaxed),
            .first_bucket = first_bucket.load(std::memory_order_relaxed),
            .buckets = buckets.load(std::memory_order_relaxed)};
  }
  // Tests the sends in flight and forgets those that completed. Throws MpiError.
  void settle_sends();
};

// The one door from the library into a Communicator's stall state (a friend of it).
struct StallAccess {
  static StallState* state(const Communicator& comm) noexcept { return comm.stall_.get(); }
};

// Creates the state of a communicator, with its report channel: collective over `comm`
// (an MPI_Comm_dup). Throws MpiError.
std::unique_ptr<StallState, StallStateDeleter> make_stall_state(MPI_Comm comm, int rank, int size);

}  // namespace ringdp::detail
