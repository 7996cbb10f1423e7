#pragma once
/// \file
/// Learning-rate schedules: constant, step decay, cosine; optional linear scaling with the
/// number of ranks and gradual warm-up (Goyal et al. 2017, "Accurate, Large Minibatch SGD").

#include <cstdint>
#include <string_view>

namespace ringdp::train {

/// The shape of the schedule after warm-up.
enum class ScheduleKind { Constant, Step, Cosine };

/// "constant", "step", "cosine".
[[nodiscard]] const char* to_string(ScheduleKind kind) noexcept;
/// Parses "constant", "step", "cosine"; throws InvalidArgument naming the accepted values.
[[nodiscard]] ScheduleKind parse_schedule(std::string_view name);

/// A learning-rate schedule, a pure function of the global step (the same on every rank,
/// and after a resume). Times are in epochs, converted with the steps per epoch.
struct LrSchedule {
  ScheduleKind kind = ScheduleKind::Constant;
  /// The rate of one rank (before scaling).
  double base_lr = 0.05;
  /// Step: multiply by `gamma` every `step_epochs` epochs.
  double gamma = 0.1;
  double step_epochs = 30.0;
  /// Cosine: decays from the peak to `min_lr` over `total_epochs`.
  double total_epochs = 1.0;
  double min_lr = 0.0;
  /// Linear scaling rule: the peak rate is base_lr x ranks. Off by default.
  bool scale_with_ranks = false;
  /// Gradual warm-up over this many epochs (0: none): the rate rises linearly, step by
  /// step, from base_lr (from base_lr / warm-up steps when not scaling) to the peak, as in
  /// Goyal et al., so the large batch does not diverge in its first steps.
  double warmup_epochs = 0.0;

  /// The rate for global step `step` (0-based) of a run with `steps_per_epoch` steps per
  /// epoch on `ranks` ranks. Throws InvalidArgument on a negative or non-finite setting.
  [[nodiscard]] double rate(std::int64_t step, std::int64_t steps_per_epoch, int ranks) const;
};

}  // namespace ringdp::train
