// A run's checkpoints: resume from one, write them as the policy says.

#include "ringdp/train/checkpointer.hpp"

#include <fmt/format.h>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"

namespace ringdp::train {
namespace {

// The settings of this run that differ from the checkpoint's run but leave it usable.
std::vector<std::string> differences(const Checkpoint& c, const RunIdentity& run) {
  std::vector<std::string> d;
  if (c.batch_size != run.batch_size) {
    d.push_back(fmt::format("batch {} (checkpoint: {})", run.batch_size, c.batch_size));
  }
  if (c.seed != run.seed) d.push_back(fmt::format("seed {} (checkpoint: {})", run.seed, c.seed));
  if (c.sampling != run.sampling) {
    d.push_back(fmt::format("sampling {} (checkpoint: {})", run.sampling, c.sampling));
  }
  if (c.virtual_ranks != run.virtual_ranks) {
    d.push_back(
        fmt::format("virtual ranks {} (checkpoint: {})", run.virtual_ranks, c.virtual_ranks));
  }
  return d;
}

}  // namespace

RunIdentity run_identity(std::string model_spec, const data::DistributedSampler& sampler,
                         std::function<CheckpointMetadata()> metadata) {
  return {.model_spec = std::move(model_spec),
          .sampling = data::to_string(sampler.mode()),
          .batch_size = static_cast<std::int64_t>(sampler.options().batch_size),
          .virtual_ranks = sampler.options().virtual_ranks,
          .seed = sampler.options().seed,
          .metadata = std::move(metadata)};
}

Checkpointer::Checkpointer(Trainer& trainer, CheckpointPolicy policy, RunIdentity identity)
    : trainer_(trainer), policy_(std::move(policy)), identity_(std::move(identity)) {}

Resumed Checkpointer::resume(const std::string& path, std::int64_t steps_per_epoch) {
  const Communicator& comm = trainer_.world();
  Resumed resumed{.path = path, .differences = {}};
  if (resumed.path.empty()) {
    resumed.path = latest_checkpoint(comm, policy_.directory);  // rank 0's, broadcast
    if (resumed.path.empty()) {
      throw InvalidArgument(
          -1, fmt::format("no checkpoint in '{}' to resume from", policy_.directory), true);
    }
  }
  const CheckpointExpectation expected = trainer_.checkpoint_expectation(identity_.model_spec);
  const Checkpoint c = load_checkpoint(comm, resumed.path, &expected);
  // The same checkpoint on every rank, so the same decisions.
  if (c.step_in_epoch >= steps_per_epoch) {
    throw InvalidArgument(-1,
                          fmt::format("cannot resume from '{}': it is at step {} of an epoch of "
                                      "{} steps (different batch size or data?)",
                                      resumed.path, c.step_in_epoch, steps_per_epoch),
                          true);
  }
  agree_on(comm, [&] { trainer_.restore(c); });
  resumed.differences = differences(c, identity_);
  return resumed;
}

void Checkpointer::after_step() {
  const std::int64_t step = trainer_.position().global_step;
  if (!policy_.directory.empty() && policy_.every_steps > 0 && step % policy_.every_steps == 0) {
    save();
  }
}

void Checkpointer::after_epoch(bool last) {
  const TrainPosition& p = trainer_.position();
  const bool due = policy_.every_epochs > 0 && p.epoch % policy_.every_epochs == 0;
  if (!policy_.directory.empty() && (due || last) && last_step_ != p.global_step) save();
}

std::string Checkpointer::save() {
  if (policy_.directory.empty()) {
    throw InvalidArgument("Checkpointer::save: the checkpoint policy names no directory");
  }
  Checkpoint c = trainer_.capture();
  c.model_spec = identity_.model_spec;
  c.sampling = identity_.sampling;
  c.batch_size = identity_.batch_size;
  c.virtual_ranks = identity_.virtual_ranks;
  c.seed = identity_.seed;
  if (identity_.metadata) c.metadata = identity_.metadata();
  last_ = save_checkpoint(trainer_.world(), policy_.directory, c, policy_.keep);
  last_step_ = c.step;
  return last_;
}

}  // namespace ringdp::train
