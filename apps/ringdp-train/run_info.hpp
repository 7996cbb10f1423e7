#pragma once
// The facts rank 0 prints about a run: the header before training and the final summary.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "options.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/train/checkpointer.hpp"
#include "ringdp/train/trainer.hpp"

namespace ringdp_train {

struct RunInfo {
  int ranks = 0;
  std::vector<std::string> hosts;  // distinct, in rank order of first appearance
  std::string hosts_text;
  std::size_t train_samples = 0;
  std::size_t test_samples = 0;
  std::size_t features = 0;
  int classes = 0;
  std::string element_type;
  std::string sampling;
  std::vector<std::int64_t> shard_samples;  // real samples per epoch, per rank
  std::size_t parameters = 0;
  std::int64_t steps_per_epoch = 0;
  std::size_t global_batch = 0;
  std::string algorithm_text;
};

/// Collective over `world`: gathers host names from every rank and shard sizes over the
/// trainer's (data) ranks. `parameters`: of the unsplit model.
RunInfo describe_run(const ringdp::Communicator& world, const Options& o,
                     const ringdp::data::ShardedLoader& train_loader,
                     const ringdp::data::ShardedLoader* test_loader, std::size_t parameters,
                     const ringdp::train::Trainer& trainer);

std::vector<std::string> header_lines(const RunInfo& info, const Options& o);

/// Where a resumed run continues (`position`), and what differs from the checkpoint's run.
std::vector<std::string> resume_lines(const ringdp::train::Resumed& resumed,
                                      const ringdp::train::TrainPosition& position);

/// What the run did, for the final summary (times are means over ranks, in seconds).
struct Summary {
  double wall_seconds = 0.0;
  double train_seconds = 0.0;
  std::int64_t samples = 0;
  std::int64_t steps = 0;
  std::int64_t skipped_steps = 0;  // skipped for NaN/Inf (--skip-nonfinite)
  bool tested = false;
  ringdp::train::EpochResult test{};
  std::string checkpoint;
  ringdp::train::StepTimes times;  ///< summed over the steps (the parts, not `total`)
};

std::vector<std::string> summary_lines(const Summary& s, const RunInfo& info, const Options& o);

}  // namespace ringdp_train
