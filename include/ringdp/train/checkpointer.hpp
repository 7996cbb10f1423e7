#pragma once
/// \file
/// The checkpoints of a training run: resuming from one, and writing them at the epochs or
/// steps a CheckpointPolicy names. Each holds the trainer's state (Trainer::capture()) and
/// what the run's sample order depends on, so that a resumed run with the same settings
/// continues bit for bit (see checkpoint.hpp for the file).
///
///   train::Checkpointer checkpoints(trainer, {.directory = "run1"},
///                                   train::run_identity("784-512-256-10", loader.sampler()));
///   if (resume) checkpoints.resume("", loader.steps_per_epoch());  // the newest in run1/
///   ... trainer.train_epoch(source, [&](auto&&...) { checkpoints.after_step(); });
///   checkpoints.after_epoch(/*last=*/epoch + 1 == epochs);

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ringdp/data/sampler.hpp"
#include "ringdp/train/checkpoint.hpp"
#include "ringdp/train/trainer.hpp"

namespace ringdp::train {

/// When and where a run writes checkpoints. Set the same on every rank.
struct CheckpointPolicy {
  std::string directory;          ///< where checkpoints go; empty: the run writes none
  std::int64_t every_epochs = 1;  ///< at the end of every this many epochs (0: not by epochs)
  std::int64_t every_steps = 0;   ///< after every this many global steps (0: not by steps)
  int keep = 3;                   ///< checkpoints kept in `directory`, the newest (>= 1)
};

/// Free-form run metadata, written as string attributes of a checkpoint's /metadata.
using CheckpointMetadata = std::vector<std::pair<std::string, std::string>>;

/// What a run's checkpoints record beside the trainer's state: the model and the sample
/// order's parameters (the run's random streams are functions of the seed and the epoch).
struct RunIdentity {
  std::string model_spec;          ///< as the model was built, e.g. "784-512-256-10"
  std::string sampling;            ///< the resolved sampling mode: "global" or "shard"
  std::int64_t batch_size = 0;     ///< per logical rank
  std::int64_t virtual_ranks = 0;  ///< data::SamplerOptions::virtual_ranks
  std::uint64_t seed = 0;          ///< seed of initialisation and sampling
  /// Called at every save for the metadata (so that it may stamp the date); may be empty.
  std::function<CheckpointMetadata()> metadata = {};
};

/// The identity of a run of the model `model_spec` over the sample order of `sampler`.
[[nodiscard]] RunIdentity run_identity(std::string model_spec,
                                       const data::DistributedSampler& sampler,
                                       std::function<CheckpointMetadata()> metadata = {});

/// What Checkpointer::resume() restored.
struct Resumed {
  std::string path;  ///< the checkpoint
  /// This run's settings that differ from those of the run that wrote the checkpoint in a
  /// way that leaves it usable but makes this run no longer continue that one bit for bit,
  /// e.g. "batch 64 (checkpoint: 32)". The same on every rank.
  std::vector<std::string> differences;
};

/// The checkpoints of one run over a Trainer (which must outlive it). Every method but
/// last() is collective over the trainer's communicator: call them on every rank alike.
class Checkpointer {
 public:
  Checkpointer(Trainer& trainer, CheckpointPolicy policy, RunIdentity identity);

  /// Restores the trainer from the checkpoint `path` or, when `path` is empty, from the
  /// newest checkpoint of the policy's directory. Every rank throws the same error when
  /// there is none (InvalidArgument), when the file cannot be read or does not fit the
  /// trainer and the model spec (see load_checkpoint()), or when its position lies beyond
  /// an epoch of `steps_per_epoch` steps.
  Resumed resume(const std::string& path, std::int64_t steps_per_epoch);

  /// After a training step: writes a checkpoint when the global step is a multiple of
  /// every_steps.
  void after_step();
  /// After an epoch's last step: writes a checkpoint when the epoch count is a multiple of
  /// every_epochs or the epoch is the run's `last`, unless this step's is already written.
  void after_epoch(bool last);
  /// Writes a checkpoint of the trainer's current state now, whatever the policy's period
  /// (not without a directory: InvalidArgument). Returns its path.
  std::string save();

  /// Local: the path of the last checkpoint written, empty when none.
  [[nodiscard]] const std::string& last() const noexcept { return last_; }

 private:
  Trainer& trainer_;
  CheckpointPolicy policy_;
  RunIdentity identity_;
  std::string last_;
  std::int64_t last_step_ = -1;  // global step of last_
};

}  // namespace ringdp::train
