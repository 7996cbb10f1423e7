// The trainer's state to and from a Checkpoint: the parameter arena, the optimizer state and
// the position.

#include <fmt/format.h>

#include <algorithm>

#include "ringdp/error.hpp"
#include "ringdp/train/trainer.hpp"

namespace ringdp::train {

Checkpoint Trainer::capture() const {
  Checkpoint c;
  c.ranks = comm_.size();
  c.epoch = position_.epoch;
  c.step_in_epoch = position_.step_in_epoch;
  c.step = position_.global_step;
  c.parameters.assign(model_.parameters().begin(), model_.parameters().end());
  c.optimizer = optimizer_.kind();
  c.optimizer_steps = optimizer_.step_count();
  for (const auto& s : optimizer_.state()) {
    c.optimizer_state.push_back({s.name, {s.data.begin(), s.data.end()}});
  }
  return c;
}

CheckpointExpectation Trainer::checkpoint_expectation(std::string model_spec) const {
  CheckpointExpectation e;
  e.model_spec = std::move(model_spec);
  e.ranks = comm_.size();
  e.parameter_count = model_.parameter_count();
  e.optimizer = optimizer_.kind();
  for (const auto& s : optimizer_.state()) e.optimizer_state_names.push_back(s.name);
  return e;
}

void Trainer::restore(const Checkpoint& c) {
  // Every check first, so that a checkpoint that does not fit changes nothing.
  std::string why = check_compatible(c, checkpoint_expectation(c.model_spec));
  auto state = optimizer_.state();
  for (std::size_t i = 0; why.empty() && i < state.size(); ++i) {
    if (c.optimizer_state[i].values.size() != state[i].data.size()) {
      why = fmt::format("optimizer state '{}' holds {} values, the model has {} parameters",
                        state[i].name, c.optimizer_state[i].values.size(), state[i].data.size());
    }
  }
  if (why.empty() && c.optimizer_steps < 0) {
    why = fmt::format("negative optimizer step count {}", c.optimizer_steps);
  }
  if (!why.empty()) throw InvalidArgument(fmt::format("Trainer::restore: {}", why));
  set_position({.epoch = c.epoch, .step_in_epoch = c.step_in_epoch, .global_step = c.step});

  std::copy(c.parameters.begin(), c.parameters.end(), model_.parameters().begin());
  for (std::size_t i = 0; i < state.size(); ++i) {
    std::copy(c.optimizer_state[i].values.begin(), c.optimizer_state[i].values.end(),
              state[i].data.begin());
  }
  optimizer_.set_step_count(c.optimizer_steps);
}

}  // namespace ringdp::train
