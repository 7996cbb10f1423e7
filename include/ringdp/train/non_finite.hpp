#pragma once
/// \file
/// The error a training step raises when it meets NaN or Inf in the loss or in the
/// averaged gradient (see TrainerOptions::skip_nonfinite for skipping such steps instead).

#include <cstdint>
#include <string>

#include "ringdp/error.hpp"

namespace ringdp::train {

/// A NaN or an Inf in a step's loss or averaged gradient. Every rank throws it together,
/// with the same message ("ringdp: step 57: non-finite loss on rank 2", "ringdp: step 57:
/// non-finite averaged gradient in layer 0 (Dense 784x512, weight): ..."), so the job can
/// end cleanly: collective() is true and rank() is -1 (the averaged gradient belongs to no
/// rank; the loss's rank is in the message and in loss_rank()).
class NonFiniteError : public Error {
 public:
  /// `step`: the global step (0-based, as TrainPosition::global_step before the step);
  /// `layer`: the model layer the gradient names, -1 for the loss; `loss_rank`: the lowest
  /// rank whose local loss was not finite, -1 when none (or for the gradient).
  NonFiniteError(std::int64_t step, int layer, int loss_rank, std::string cause);

  [[nodiscard]] std::int64_t step() const noexcept { return step_; }
  /// Index of the layer (forward order) with a non-finite averaged gradient; -1 for the loss.
  [[nodiscard]] int layer() const noexcept { return layer_; }
  /// Lowest rank whose local loss was NaN or Inf; -1 when the gradient was at fault or the
  /// sum over ranks overflowed.
  [[nodiscard]] int loss_rank() const noexcept { return loss_rank_; }

 private:
  std::int64_t step_;
  int layer_;
  int loss_rank_;
};

}  // namespace ringdp::train
