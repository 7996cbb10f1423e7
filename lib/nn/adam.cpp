#include "ringdp/nn/adam.hpp"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "ringdp/comm/error.hpp"

namespace ringdp::nn {

template <class T>
Adam<T>::Adam(std::size_t size, AdamOptions options)
    : Optimizer<T>(size), options_(options), m_(size, T(0)), v_(size, T(0)) {
  const auto in_unit = [](double b) { return b >= 0.0 && b < 1.0; };
  if (!in_unit(options.beta1) || !in_unit(options.beta2)) {
    throw InvalidArgument(
        fmt::format("Adam betas must be in [0, 1), got {} and {}", options.beta1, options.beta2));
  }
  if (!(options.epsilon > 0.0) || !std::isfinite(options.epsilon)) {
    throw InvalidArgument(
        fmt::format("Adam epsilon must be finite and > 0, got {}", options.epsilon));
  }
  if (!(options.weight_decay >= 0.0) || !std::isfinite(options.weight_decay)) {
    throw InvalidArgument(
        fmt::format("Adam weight decay must be finite and >= 0, got {}", options.weight_decay));
  }
}

template <class T>
std::vector<StateArray<T>> Adam<T>::state() {
  return {{"adam.m", std::span<T>(m_)}, {"adam.v", std::span<T>(v_)}};
}

template <class T>
void Adam<T>::update(T* parameters, const T* gradients, std::size_t n, double learning_rate,
                     std::int64_t step) {
  // Bias corrections depend only on the step, so they are computed once in double and
  // folded into two T coefficients: p -= step_size * m / (sqrt(v) * inv_sqrt_c2 + eps)
  // equals the textbook lr * m_hat / (sqrt(v_hat) + eps).
  const double t = static_cast<double>(step);
  const double c1 = 1.0 - std::pow(options_.beta1, t);
  const double c2 = 1.0 - std::pow(options_.beta2, t);
  const T step_size = static_cast<T>(learning_rate / c1);
  const T inv_sqrt_c2 = static_cast<T>(1.0 / std::sqrt(c2));
  const T b1 = static_cast<T>(options_.beta1);
  const T b2 = static_cast<T>(options_.beta2);
  const T one_minus_b1 = static_cast<T>(1.0 - options_.beta1);
  const T one_minus_b2 = static_cast<T>(1.0 - options_.beta2);
  const T eps = static_cast<T>(options_.epsilon);
  const T l2 = options_.decoupled ? T(0) : static_cast<T>(options_.weight_decay);
  const T decay = options_.decoupled ? static_cast<T>(learning_rate * options_.weight_decay) : T(0);
  // A plain loop would not vectorise: std::sqrt may set errno, which GCC treats as a side
  // effect. Eigen's array expressions use its SIMD square root instead. The arena is walked
  // in blocks small enough to stay in L1 (4 arrays x 1024 floats = 16 kB), so the three passes per
  // block cost no extra memory traffic over one fused loop.
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  constexpr std::size_t kBlock = 1024;
  for (std::size_t begin = 0; begin < n; begin += kBlock) {
    const auto len = static_cast<Eigen::Index>(std::min(kBlock, n - begin));
    Eigen::Map<Array> p(parameters + begin, len);
    Eigen::Map<const Array> g(gradients + begin, len);
    Eigen::Map<Array> m(m_.data() + begin, len);
    Eigen::Map<Array> v(v_.data() + begin, len);
    m = b1 * m + one_minus_b1 * (g + l2 * p);
    v = b2 * v + one_minus_b2 * (g + l2 * p).square();
    // Coefficient-wise, so reading p on the right while writing it is safe; AdamW decays the
    // value from before this step's update.
    p -= step_size * m / (v.sqrt() * inv_sqrt_c2 + eps) + decay * p;
  }
}

template class Adam<float>;
template class Adam<double>;

}  // namespace ringdp::nn
