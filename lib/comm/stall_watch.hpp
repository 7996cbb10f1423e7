#pragma once
// The stall inspector's view of one long wait (see ringdp/comm/stall.hpp for what it does).

#include <chrono>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/stall.hpp"
#include "stall_state.hpp"

namespace ringdp::detail {

// Made by the wait loop when a wait is not over after its first few polls (one read of a
// coarse clock), ticked every few polls, destroyed when the wait ends.
// Used by the thread doing the wait only, which is then the only thread inside MPI.
class StallWatch {
 public:
  explicit StallWatch(const Communicator& comm);
  ~StallWatch();
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;

  // Reads the clock; reports to rank 0, answers reports, prints and aborts when due.
  void tick();
  // True once the wait has lasted long enough that the loop should yield the core.
  [[nodiscard]] bool yielding() const noexcept { return yielding_; }

 private:
  using Seconds = std::chrono::duration<double>;

  void drain();
  void send(int dest, int tag, const StallMessage& message);
  void report(double waited);
  [[nodiscard]] std::string rank0_line(double waited) const;
  [[nodiscard]] std::string silent_rank0_line(double waited) const;
  [[nodiscard]] std::string where() const;

  const Communicator& comm_;
  StallState* state_;
  StallChannel* channel_ = nullptr;
  StallSettings settings_;
  StallClock::time_point start_;
  StallClock::time_point next_drain_;
  double report_after_ = 0.0;  // seconds: when this rank reports (0: never)
  double grace_ = 0.0;         // seconds: how long reports and answers may take
  double abort_after_ = 0.0;   // seconds: when the job is aborted (0: never)
  double next_line_ = 0.0;     // rank 0: when it prints its next line
  bool yielding_ = false;
  bool printed_ = false;  // this rank printed a line about this wait
};

}  // namespace ringdp::detail
