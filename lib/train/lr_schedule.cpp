// Learning-rate schedules.

#include "ringdp/train/lr_schedule.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "ringdp/error.hpp"

namespace ringdp::train {

const char* to_string(ScheduleKind kind) noexcept {
  switch (kind) {
    case ScheduleKind::Constant:
      return "constant";
    case ScheduleKind::Step:
      return "step";
    case ScheduleKind::Cosine:
      return "cosine";
  }
  return "unknown";
}

ScheduleKind parse_schedule(std::string_view name) {
  if (name == "constant") return ScheduleKind::Constant;
  if (name == "step") return ScheduleKind::Step;
  if (name == "cosine") return ScheduleKind::Cosine;
  throw InvalidArgument(
      fmt::format("unknown learning-rate schedule '{}' (expected constant, step or cosine)", name));
}

double LrSchedule::rate(std::int64_t step, std::int64_t steps_per_epoch, int ranks) const {
  for (const double v : {base_lr, gamma, step_epochs, total_epochs, min_lr, warmup_epochs}) {
    if (!std::isfinite(v) || v < 0.0) {
      throw InvalidArgument(fmt::format("LrSchedule: settings must be finite and >= 0, got {}", v));
    }
  }
  if (steps_per_epoch < 1 || ranks < 1 || step < 0) {
    throw InvalidArgument(fmt::format("LrSchedule::rate: step {}, {} steps per epoch, {} ranks",
                                      step, steps_per_epoch, ranks));
  }
  const double spe = static_cast<double>(steps_per_epoch);
  const double peak = scale_with_ranks ? base_lr * ranks : base_lr;
  const double t = static_cast<double>(step);

  const double warmup_steps = std::round(warmup_epochs * spe);
  if (warmup_steps > 0.0 && t < warmup_steps) {
    // Linear in the step, reaching the peak at the first step after warm-up.
    const double start = scale_with_ranks ? base_lr : peak / warmup_steps;
    return start + (peak - start) * t / warmup_steps;
  }
  switch (kind) {
    case ScheduleKind::Constant:
      return peak;
    case ScheduleKind::Step: {
      if (step_epochs <= 0.0) return peak;
      const double decays = std::floor(t / (step_epochs * spe));
      return peak * std::pow(gamma, decays);
    }
    case ScheduleKind::Cosine: {
      // Cosine over the steps after warm-up, ending at min_lr at total_epochs.
      const double span = std::max(1.0, total_epochs * spe - warmup_steps);
      const double progress = std::clamp((t - warmup_steps) / span, 0.0, 1.0);
      return min_lr + (peak - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }
  }
  throw InvalidArgument(fmt::format("unknown ScheduleKind value {}", static_cast<int>(kind)));
}

}  // namespace ringdp::train
