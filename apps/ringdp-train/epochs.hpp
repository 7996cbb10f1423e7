#pragma once
// The epoch loop of ringdp-train: training steps with their progress line, warnings,
// metrics rows and checkpoints; at each epoch's end the evaluation and the epoch line.

#include <cstdint>

#include "console.hpp"
#include "metrics_log.hpp"
#include "options.hpp"
#include "ringdp/train/checkpointer.hpp"
#include "ringdp/train/trainer.hpp"
#include "setup.hpp"

namespace ringdp_train {

/// What the run's epochs add up to, for the final summary (over all ranks; seconds are
/// this rank's).
struct RunTotals {
  std::int64_t steps = 0;
  std::int64_t samples = 0;
  std::int64_t skipped_steps = 0;
  double train_seconds = 0.0;  ///< wall time of the epochs' steps (evaluation excluded)
  bool tested = false;
  ringdp::train::EpochResult test{};  ///< the last evaluation
};

/// Collective: trains from the trainer's position up to --epochs. After each step: a
/// warning for a skipped one, its metrics row (--metrics-steps), the progress line and a
/// checkpoint when due. After each epoch: the evaluation on the test split, the epoch line,
/// its metrics row (write errors agreed) and a checkpoint when due.
RunTotals train_epochs(const Options& o, ringdp::train::Trainer& trainer, Data& data,
                       ringdp::train::Checkpointer& checkpoints, MetricsLog& metrics, Console& out);

}  // namespace ringdp_train
