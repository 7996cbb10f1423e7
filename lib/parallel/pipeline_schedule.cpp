#include "ringdp/parallel/pipeline_schedule.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ringdp/error.hpp"

namespace ringdp::parallel {

std::vector<PipelineAction> one_forward_one_backward(int stages, int stage, int micro_batches) {
  if (stages < 1 || stage < 0 || stage >= stages || micro_batches < 1) {
    throw InvalidArgument(
        fmt::format("1F1B schedule: stage {} of {} stages with {} micro-batches does not exist",
                    stage, stages, micro_batches));
  }
  // Stage s can start its first backward only when micro-batch 0 has gone through the
  // P - s - 1 stages after it and come back: that many forwards fill the pipe first. The
  // last stage has no warm-up: it turns each forward around at once.
  const int warmup = std::min(stages - stage - 1, micro_batches);
  std::vector<PipelineAction> actions;
  actions.reserve(2 * static_cast<std::size_t>(micro_batches));
  for (int k = 0; k < warmup; ++k) actions.push_back({Pass::Forward, k});
  for (int i = 0; i + warmup < micro_batches; ++i) {
    actions.push_back({Pass::Forward, warmup + i});
    actions.push_back({Pass::Backward, i});
  }
  for (int k = micro_batches - warmup; k < micro_batches; ++k)
    actions.push_back({Pass::Backward, k});
  return actions;
}

double ideal_bubble_fraction(int stages, int micro_batches) {
  if (stages < 1 || micro_batches < 1) {
    throw InvalidArgument(
        fmt::format("ideal_bubble_fraction: {} stages, {} micro-batches", stages, micro_batches));
  }
  return static_cast<double>(stages - 1) / static_cast<double>(micro_batches + stages - 1);
}

}  // namespace ringdp::parallel
