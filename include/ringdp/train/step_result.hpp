#pragma once
/// \file
/// What training reports: the result of a step, of an epoch or an evaluation, and the
/// running sums (EpochTally) that make an epoch's result out of its steps'.

#include <cstdint>
#include <string>

#include "ringdp/train/time_stats.hpp"

namespace ringdp::train {

/// Result of one training step, over all ranks (real samples only).
struct StepResult {
  double loss = 0.0;         ///< mean loss over the global batch
  double accuracy = 0.0;     ///< fraction correct over the global batch
  std::int64_t samples = 0;  ///< real samples in the global batch
  double learning_rate = 0.0;
  /// True when the step met a non-finite loss or averaged gradient and, with
  /// TrainerOptions::skip_nonfinite, made no update on any rank (loss may then be NaN).
  bool skipped = false;
  /// For a skipped step, what was not finite: the NonFiniteError message it would have
  /// thrown ("ringdp: step 57: non-finite loss on rank 2"); the same on every rank.
  std::string nonfinite;
  /// This rank's time in each part of the step (as Trainer::times() records it).
  StepTimes times;
};

/// Result of an epoch or an evaluation, over all ranks.
struct EpochResult {
  double loss = 0.0;         ///< mean loss per real sample
  double accuracy = 0.0;     ///< fraction correct
  std::int64_t samples = 0;  ///< real samples counted (each exactly once in evaluation)
  std::int64_t steps = 0;    ///< steps run, skipped ones included
  /// Steps skipped for a non-finite loss or gradient (TrainerOptions::skip_nonfinite); their
  /// samples are not in loss, accuracy and samples.
  std::int64_t skipped_steps = 0;
  double seconds = 0.0;  ///< wall time on this rank
  /// Training: the learning rate of the last step (0 for an evaluation).
  double learning_rate = 0.0;
  /// Training: this rank's step times summed over the steps, skipped ones included (zeros
  /// for an evaluation).
  StepTimes times;
};

/// Running sums over training steps (an epoch, or a single step): the mean loss and the
/// accuracy over their real samples, as EpochResult reports them. A skipped step counts in
/// steps, skipped_steps, times and the learning rate only: its loss may be NaN and it
/// trained nothing. Local, no MPI (the steps' results are already over all ranks).
class EpochTally {
 public:
  void add(const StepResult& step);
  /// The steps added so far, with `seconds` as their wall time.
  [[nodiscard]] EpochResult result(double seconds) const;

 private:
  double loss_sum_ = 0.0;  // sum of loss x samples
  double correct_ = 0.0;   // sum of accuracy x samples
  EpochResult sums_;       // counts, times and the last rate
};

}  // namespace ringdp::train
