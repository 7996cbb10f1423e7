// An epoch's result from its steps'.

#include "ringdp/train/step_result.hpp"

namespace ringdp::train {

void EpochTally::add(const StepResult& step) {
  ++sums_.steps;
  sums_.learning_rate = step.learning_rate;
  sums_.times += step.times;
  if (step.skipped) {
    ++sums_.skipped_steps;
    return;
  }
  loss_sum_ += step.loss * static_cast<double>(step.samples);
  correct_ += step.accuracy * static_cast<double>(step.samples);
  sums_.samples += step.samples;
}

EpochResult EpochTally::result(double seconds) const {
  EpochResult r = sums_;
  const auto samples = static_cast<double>(r.samples);
  r.loss = r.samples > 0 ? loss_sum_ / samples : 0.0;
  r.accuracy = r.samples > 0 ? correct_ / samples : 0.0;
  r.seconds = seconds;
  return r;
}

}  // namespace ringdp::train
