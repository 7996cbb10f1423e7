#pragma once
// The parts of the training job, built from the flags on every rank: the data loaders, the
// model with its optimizer, the trainer's options and the checkpoint policy.

#include <memory>
#include <string>

#include "console.hpp"
#include "options.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/nn/optimizer.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/train/checkpointer.hpp"
#include "ringdp/train/trainer.hpp"
#include "run_info.hpp"

namespace ringdp_train {

/// The data of the run.
struct Data {
  /// Collective: opens and validates the file's train split on every rank (an error is the
  /// same on every rank) and, when the file has a usable one, its test split.
  Data(const ringdp::Communicator& comm, const Options& o);

  ringdp::data::ShardedLoader train;
  std::unique_ptr<ringdp::data::ShardedLoader> test;  ///< null without a usable test split
  std::string no_test;                                ///< why there is none
};

/// The model of --model and its optimizer.
struct Model {
  /// Collective: builds the model, checks it against the data (the same error on every
  /// rank when it does not fit), initialises it from --seed and makes the optimizer.
  Model(const ringdp::Communicator& comm, const Options& o,
        const ringdp::data::ShardedLoader& data);

  ringdp::nn::Sequential<float> net;
  std::unique_ptr<ringdp::nn::Optimizer<float>> optimizer;
};

/// Local: --threads for Eigen's products (a note when this build cannot use them).
void set_compute_threads(int threads, Console& out);

[[nodiscard]] ringdp::train::TrainerOptions trainer_options(const Options& o);
[[nodiscard]] ringdp::train::CheckpointPolicy checkpoint_policy(const Options& o);
/// What the run's checkpoints record beside the trainer's state, with the metadata
/// (ringdp version, git hash, date of the save, flags, data, hosts). `info` must outlive it.
[[nodiscard]] ringdp::train::RunIdentity run_identity(const Options& o, const Data& data,
                                                      const RunInfo& info);

}  // namespace ringdp_train
