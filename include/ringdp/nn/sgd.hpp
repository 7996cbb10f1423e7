#pragma once
/// \file
/// Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ringdp/nn/optimizer.hpp"

namespace ringdp::nn {

/// Options of Sgd. The defaults give plain SGD.
struct SgdOptions {
  double momentum = 0.0;      ///< mu in [0, 1)
  bool nesterov = false;      ///< Nesterov momentum; needs momentum > 0
  double weight_decay = 0.0;  ///< L2 coefficient lambda >= 0, added to the gradient
};

/// Per element, with g the gradient, p the parameter, v the momentum buffer (starting at 0)
/// and lr the rate (the formulation of Sutskever et al. 2013 as used by PyTorch):
///   g = g + lambda p;  v = mu v + g;  d = nesterov ? g + mu v : v  (d = g when mu = 0)
///   p = p - lr d
/// State: "momentum" (only when mu > 0).
template <class T>
class Sgd final : public Optimizer<T> {
 public:
  /// Throws InvalidArgument on options out of range.
  Sgd(std::size_t size, SgdOptions options = {});
  [[nodiscard]] std::string kind() const override { return "sgd"; }
  [[nodiscard]] const SgdOptions& options() const noexcept { return options_; }
  [[nodiscard]] std::vector<StateArray<T>> state() override;

 private:
  void update(T* parameters, const T* gradients, std::size_t begin, std::size_t end,
              double learning_rate, std::int64_t step) override;
  SgdOptions options_;
  std::vector<T, Eigen::aligned_allocator<T>> velocity_;  // aligned like the arena
};

extern template class Sgd<float>;
extern template class Sgd<double>;

}  // namespace ringdp::nn
