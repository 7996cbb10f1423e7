#include "ringdp/nn/loss.hpp"

#include <fmt/format.h>

#include <cmath>

#include "ringdp/error.hpp"

namespace ringdp::nn {

template <class T>
LossResult softmax_cross_entropy(const ConstMatrixRef<T>& logits,
                                 std::span<const std::int32_t> labels, Matrix<T>& grad,
                                 std::size_t real, double denominator) {
  const Eigen::Index classes = logits.rows();
  const Eigen::Index batch = logits.cols();
  if (labels.size() != static_cast<std::size_t>(batch)) {
    throw InvalidArgument(
        fmt::format("softmax_cross_entropy: {} labels for a batch of {}", labels.size(), batch));
  }
  if (real > static_cast<std::size_t>(batch)) {
    throw InvalidArgument(
        fmt::format("softmax_cross_entropy: {} real samples in a batch of {}", real, batch));
  }
  if (!(denominator >= 0.0) || !std::isfinite(denominator)) {
    throw InvalidArgument(
        fmt::format("softmax_cross_entropy: denominator must be >= 0, got {}", denominator));
  }
  for (std::size_t j = 0; j < real; ++j) {
    if (labels[j] < 0 || labels[j] >= classes) {
      throw InvalidArgument(
          fmt::format("softmax_cross_entropy: label {} of sample {} is outside [0, {})", labels[j],
                      j, classes));
    }
  }

  const double norm = denominator > 0.0 ? denominator : static_cast<double>(real);
  const T scale = norm > 0.0 ? static_cast<T>(1.0 / norm) : T(0);
  grad.resize(classes, batch);
  LossResult result;
  result.count = real;
  for (Eigen::Index j = 0; j < static_cast<Eigen::Index>(real); ++j) {
    const auto z = logits.col(j);
    // log softmax(z)_k = z_k - m - log(sum_i exp(z_i - m)) with m = max z: every exponent
    // is <= 0, so nothing overflows, and the largest term is exactly 1, so the sum is never
    // below 1 and its log loses nothing to underflow.
    Eigen::Index argmax = 0;
    const T m = z.maxCoeff(&argmax);  // first maximum on ties
    auto g = grad.col(j);
    g.array() = (z.array() - m).exp();
    const T sum = g.sum();
    const std::int32_t label = labels[static_cast<std::size_t>(j)];
    result.loss_sum += std::log(static_cast<double>(sum)) - static_cast<double>(z(label) - m);
    if (argmax == label) ++result.correct;
    // dL/dz = (softmax(z) - onehot(label)) / norm.
    g *= scale / sum;
    g(label) -= scale;
  }
  // Padded columns contribute nothing.
  if (static_cast<Eigen::Index>(real) < batch) {
    grad.rightCols(batch - static_cast<Eigen::Index>(real)).setZero();
  }
  result.mean_loss = real > 0 ? result.loss_sum / static_cast<double>(real) : 0.0;
  return result;
}

template LossResult softmax_cross_entropy<float>(const ConstMatrixRef<float>&,
                                                 std::span<const std::int32_t>, Matrix<float>&,
                                                 std::size_t, double);
template LossResult softmax_cross_entropy<double>(const ConstMatrixRef<double>&,
                                                  std::span<const std::int32_t>, Matrix<double>&,
                                                  std::size_t, double);

}  // namespace ringdp::nn
