#include "ringdp/nn/adam.hpp"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "ringdp/error.hpp"

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
void Adam<T>::update(T* parameters, const T* gradients, std::size_t begin, std::size_t end,
                     double learning_rate, std::int64_t step) {
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
  // A plain element-wise loop, on purpose. Every rank applies this step to bit-identical
  // averaged gradients and must end with bit-identical parameters. Eigen's vectorised
  // expressions peel a scalar head up to the first aligned address and use fused
  // multiply-adds in the SIMD body but not in the scalar head, so two ranks whose arenas
  // sit at different alignments round differently. Here the compiler vectorises the loop
  // (the library is built with -fno-math-errno, so sqrt has no side effect) without
  // contracting multiply-adds (-ffp-contract=off), and every element gets the same IEEE
  // operations whichever path computes it.
  const std::size_t n = end - begin;
  T* __restrict p = parameters + begin;
  const T* __restrict grad = gradients + begin;
  T* __restrict m = m_.data() + begin;
  T* __restrict v = v_.data() + begin;
  for (std::size_t i = 0; i < n; ++i) {
    const T g = grad[i] + l2 * p[i];
    m[i] = b1 * m[i] + one_minus_b1 * g;
    v[i] = b2 * v[i] + one_minus_b2 * (g * g);
    // AdamW decays the value from before this step's update.
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps) + decay * p[i];
  }
}

template class Adam<float>;
template class Adam<double>;

}  // namespace ringdp::nn
