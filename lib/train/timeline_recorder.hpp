#pragma once
// What the trainer records of each step: the moments of its parts, turned into StepTimes
// and, when asked, into TimelineEvents. Private to the library.

#include <cstdint>
#include <vector>

#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/train/time_stats.hpp"
#include "ringdp/train/timeline.hpp"

namespace ringdp::train::detail {

using Moment = ReducerClock::time_point;

/// The moments of one training step, in order. The step's metrics allreduce runs either
/// before backward (its global real count unknown in advance: metrics_early) or after the
/// gradient reductions (late); the other interval is then empty. Parts the step did not
/// run (no backward, no update) are empty intervals too.
struct StepMarks {
  Moment start;         ///< forward begins (the batch is in hand)
  Moment forward_end;   ///< forward and loss done
  Moment early_end;     ///< the early metrics allreduce done (= forward_end when late)
  Moment backward_end;  ///< backward done, every bucket handed to the reducer
  Moment wait_end;      ///< GradientReducer::wait_all() returned
  Moment late_end;      ///< the late metrics allreduce done (= wait_end when early)
  Moment update_end;    ///< the optimizer step done
  bool metrics_early = false;
  bool backward = false;  ///< backward and the gradient reductions ran

  /// The step's times; `data_seconds` is the wait for its batch, before `start`.
  [[nodiscard]] StepTimes times(double data_seconds) const;
};

/// The trainer's event record: intervals in microseconds since `origin`. Records nothing
/// when not enabled. Local, not thread-safe (the trainer's thread only).
class TimelineRecorder {
 public:
  TimelineRecorder(bool enabled, Moment origin) : enabled_(enabled), origin_(origin) {}

  /// One interval of `kind` at global step `step`.
  void add(EventKind kind, std::int64_t step, Moment begin, Moment end);
  /// Every part of step `step`: forward, metrics, backward, one event per reduction of
  /// `reducer` (from its timings, on the progress thread's track), wait and optimizer.
  void add_step(std::int64_t step, const StepMarks& marks, const GradientReducer& reducer);

  [[nodiscard]] const std::vector<TimelineEvent>& events() const noexcept { return events_; }

 private:
  [[nodiscard]] double microseconds(Moment t) const;

  bool enabled_;
  Moment origin_;
  std::vector<TimelineEvent> events_;
};

}  // namespace ringdp::train::detail
