// The trainer's state to and from a Checkpoint: the parameter arena, the optimizer state and
// the position.

#include <fmt/format.h>

#include <algorithm>
#include <span>
#include <vector>

#include "ringdp/error.hpp"
#include "ringdp/train/trainer.hpp"

namespace ringdp::train {

namespace {

// An array of this rank's arena layout, as stored: unsplit (gathered over the replica).
std::vector<float> stored(const Replica* replica, std::span<const float> local) {
  if (replica == nullptr) return {local.begin(), local.end()};
  return replica->gather_full(local);
}

}  // namespace

Checkpoint Trainer::capture() const {
  Checkpoint c;
  c.ranks = world().size();
  c.epoch = position_.epoch;
  c.step_in_epoch = position_.step_in_epoch;
  c.step = position_.global_step;
  c.parameters = stored(replica_, model_.parameters());
  c.optimizer = optimizer_.kind();
  c.optimizer_steps = optimizer_.step_count();
  for (const auto& s : optimizer_.state()) {
    c.optimizer_state.push_back({s.name, stored(replica_, s.data)});
  }
  return c;
}

CheckpointExpectation Trainer::checkpoint_expectation(std::string model_spec) const {
  CheckpointExpectation e;
  e.model_spec = std::move(model_spec);
  e.ranks = world().size();
  e.parameter_count =
      replica_ != nullptr ? replica_->full_parameter_count() : model_.parameter_count();
  e.optimizer = optimizer_.kind();
  for (const auto& s : optimizer_.state()) e.optimizer_state_names.push_back(s.name);
  return e;
}

void Trainer::restore(const Checkpoint& c) {
  // Every check first, so that a checkpoint that does not fit changes nothing.
  std::string why = check_compatible(c, checkpoint_expectation(c.model_spec));
  auto state = optimizer_.state();
  const std::size_t stored_count = c.parameters.size();
  for (std::size_t i = 0; why.empty() && i < state.size(); ++i) {
    if (c.optimizer_state[i].values.size() != stored_count) {
      why = fmt::format("optimizer state '{}' holds {} values, the model has {} parameters",
                        state[i].name, c.optimizer_state[i].values.size(), stored_count);
    }
  }
  if (why.empty() && c.optimizer_steps < 0) {
    why = fmt::format("negative optimizer step count {}", c.optimizer_steps);
  }
  if (!why.empty()) throw InvalidArgument(fmt::format("Trainer::restore: {}", why));
  set_position({.epoch = c.epoch, .step_in_epoch = c.step_in_epoch, .global_step = c.step});

  // This rank's part of each unsplit array (all of it when the replica is this rank).
  const auto take = [this](const std::vector<float>& full, std::span<float> local) {
    if (replica_ != nullptr) {
      replica_->scatter_full(full, local);
    } else {
      std::copy(full.begin(), full.end(), local.begin());
    }
  };
  take(c.parameters, model_.parameters());
  for (std::size_t i = 0; i < state.size(); ++i) take(c.optimizer_state[i].values, state[i].data);
  optimizer_.set_step_count(c.optimizer_steps);
}

}  // namespace ringdp::train
