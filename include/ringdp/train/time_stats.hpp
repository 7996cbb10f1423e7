#pragma once
/// \file
/// Where a training step's time goes: data wait, forward, backward, exposed communication,
/// optimizer; per step, and as totals and medians over many steps.

#include <cstddef>
#include <vector>

namespace ringdp::train {

/// Seconds spent in each part of one step, on this rank.
struct StepTimes {
  double data = 0.0;      ///< waiting for the batch (BatchSource::next)
  double forward = 0.0;   ///< forward pass and loss
  double backward = 0.0;  ///< backward pass (gradient reductions run meanwhile)
  /// Communication not hidden behind compute: the metrics allreduce plus the wait for the
  /// gradient reductions still running when backward ended (GradientReducer::wait_all).
  double exposed_comm = 0.0;
  double optimizer = 0.0;  ///< optimizer update
  /// Whole step, from the request for the batch to the end of the update.
  double total = 0.0;

  /// Adds `other` field by field.
  StepTimes& operator+=(const StepTimes& other) noexcept;
};

/// Totals and per-step medians of a series of StepTimes. Local (this rank's times).
class TimeStats {
 public:
  void add(const StepTimes& t) { steps_.push_back(t); }
  void clear() noexcept { steps_.clear(); }
  [[nodiscard]] std::size_t steps() const noexcept { return steps_.size(); }
  [[nodiscard]] const std::vector<StepTimes>& all() const noexcept { return steps_; }
  /// Sum of every field over the steps.
  [[nodiscard]] StepTimes totals() const;
  /// Median of every field over the steps, field by field (zeros when empty).
  [[nodiscard]] StepTimes medians() const;

 private:
  std::vector<StepTimes> steps_;
};

}  // namespace ringdp::train
