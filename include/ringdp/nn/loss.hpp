#pragma once
/// \file
/// Softmax cross-entropy loss on logits, with accuracy.

#include <cstddef>
#include <cstdint>
#include <span>

#include "ringdp/nn/types.hpp"

namespace ringdp::nn {

/// Result of softmax_cross_entropy() over the counted (real) samples of a batch.
struct LossResult {
  /// Sum over the counted samples of -log softmax(logits)[label] (nats). Sums, not means,
  /// are what ranks add up in one small allreduce.
  double loss_sum = 0.0;
  /// loss_sum / count (0 when count is 0).
  double mean_loss = 0.0;
  /// Counted samples whose largest logit is at the label (ties: the lowest index wins).
  std::size_t correct = 0;
  /// Number of counted samples.
  std::size_t count = 0;
};

/// Softmax cross-entropy of `logits` (classes x batch) against integer `labels` (one per
/// column, in [0, classes)). Only the first `real` columns count: padded columns of a last,
/// short batch get zero gradient and no loss. Writes dL/dlogits into `grad` (resized to
/// the logits' shape) for L = loss_sum / `denominator`; `denominator` 0 means `real`, so the
/// default gradient is that of the mean loss. A data-parallel trainer whose ranks have
/// unequal real counts passes the global count instead.
///
/// Numerically stable: log-sum-exp with the column maximum subtracted, so large logits
/// neither overflow nor lose the loss to rounding. The batch loss is accumulated in double.
/// Throws InvalidArgument when labels.size() != batch, real > batch, a counted label is out
/// of range, or denominator < 0. Local, no MPI; thread-safe on distinct outputs.
template <class T>
LossResult softmax_cross_entropy(const ConstMatrixRef<T>& logits,
                                 std::span<const std::int32_t> labels, Matrix<T>& grad,
                                 std::size_t real, double denominator = 0.0);

/// Same, counting every column.
template <class T>
LossResult softmax_cross_entropy(const ConstMatrixRef<T>& logits,
                                 std::span<const std::int32_t> labels, Matrix<T>& grad) {
  return softmax_cross_entropy<T>(logits, labels, grad, static_cast<std::size_t>(logits.cols()));
}

extern template LossResult softmax_cross_entropy<float>(const ConstMatrixRef<float>&,
                                                        std::span<const std::int32_t>,
                                                        Matrix<float>&, std::size_t, double);
extern template LossResult softmax_cross_entropy<double>(const ConstMatrixRef<double>&,
                                                         std::span<const std::int32_t>,
                                                         Matrix<double>&, std::size_t, double);

}  // namespace ringdp::nn
