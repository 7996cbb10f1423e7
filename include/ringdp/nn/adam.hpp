#pragma once
/// \file
/// Adam (Kingma & Ba 2015), optionally with decoupled weight decay (AdamW).

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ringdp/nn/optimizer.hpp"

namespace ringdp::nn {

/// Options of Adam.
struct AdamOptions {
  double beta1 = 0.9;         ///< in [0, 1)
  double beta2 = 0.999;       ///< in [0, 1)
  double epsilon = 1e-8;      ///< > 0
  double weight_decay = 0.0;  ///< lambda >= 0
  /// false: L2 (lambda p added to the gradient); true: AdamW, p -= lr lambda p.
  bool decoupled = false;
};

/// Per element, at step t (1 on the first step), with m and v starting at 0:
///   g = g + lambda p  (L2 form);   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
///   p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)  [ - lr lambda p, AdamW ]
/// State: "adam.m", "adam.v"; the step count t is Optimizer::step_count().
template <class T>
class Adam final : public Optimizer<T> {
 public:
  /// Throws InvalidArgument on options out of range.
  Adam(std::size_t size, AdamOptions options = {});
  [[nodiscard]] std::string kind() const override { return "adam"; }
  [[nodiscard]] const AdamOptions& options() const noexcept { return options_; }
  [[nodiscard]] std::vector<StateArray<T>> state() override;

 private:
  void update(T* parameters, const T* gradients, std::size_t begin, std::size_t end,
              double learning_rate, std::int64_t step) override;
  AdamOptions options_;
  std::vector<T, Eigen::aligned_allocator<T>> m_;  // aligned like the arena
  std::vector<T, Eigen::aligned_allocator<T>> v_;  // aligned like the arena
};

extern template class Adam<float>;
extern template class Adam<double>;

}  // namespace ringdp::nn
