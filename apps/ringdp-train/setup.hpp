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
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/parallel_mlp.hpp"
#include "ringdp/train/checkpointer.hpp"
#include "ringdp/train/parallel_replica.hpp"
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

/// The model of --model (whole, or this rank's part of a replica split over `grid`) and
/// its optimizer.
struct Model {
  /// Collective over `comm` (every rank of the job): checks the model against the data
  /// (the same error on every rank when it does not fit), builds it (with a grid: this
  /// rank's part; the same error on every rank when it cannot be split so), initialises it
  /// from --seed and makes the optimizer. `grid` (may be null) must outlive the model.
  Model(const ringdp::Communicator& comm, const Options& o, const ringdp::data::ShardedLoader& data,
        const ringdp::parallel::Grid* grid);

  /// This rank's model: the whole one, or its part of the split replica.
  [[nodiscard]] ringdp::nn::Sequential<float>& local() { return split ? split->model() : *net; }
  [[nodiscard]] std::size_t full_parameter_count() const;

  std::unique_ptr<ringdp::nn::Sequential<float>> net;           ///< null with a grid
  std::unique_ptr<ringdp::parallel::ParallelMlp<float>> split;  ///< with a grid
  std::unique_ptr<ringdp::train::ParallelReplica> replica;      ///< with a grid
  std::unique_ptr<ringdp::nn::Optimizer<float>> optimizer;
};

/// The trainer of `model`: over `comm` for a whole model, over `data` (the grid's data
/// group) for a split one.
[[nodiscard]] std::unique_ptr<ringdp::train::Trainer> make_trainer(const ringdp::Communicator& comm,
                                                                   const ringdp::Communicator& data,
                                                                   Model& model, const Options& o);


[[nodiscard]] ringdp::train::TrainerOptions trainer_options(const Options& o);
[[nodiscard]] ringdp::train::CheckpointPolicy checkpoint_policy(const Options& o);
/// What the run's checkpoints record beside the trainer's state, with the metadata
/// (ringdp version, git hash, date of the save, flags, data, hosts). `info` must outlive it.
[[nodiscard]] ringdp::train::RunIdentity run_identity(const Options& o, const Data& data,
                                                      const RunInfo& info);

}  // namespace ringdp_train
