#include "ringdp/nn/sgd.hpp"

#include <fmt/format.h>

#include <cmath>

#include "ringdp/error.hpp"

namespace ringdp::nn {

template <class T>
Sgd<T>::Sgd(std::size_t size, SgdOptions options) : Optimizer<T>(size), options_(options) {
  if (!(options.momentum >= 0.0 && options.momentum < 1.0)) {
    throw InvalidArgument(fmt::format("SGD momentum must be in [0, 1), got {}", options.momentum));
  }
  if (options.nesterov && options.momentum == 0.0) {
    throw InvalidArgument("SGD with Nesterov momentum needs momentum > 0");
  }
  if (!(options.weight_decay >= 0.0) || !std::isfinite(options.weight_decay)) {
    throw InvalidArgument(
        fmt::format("SGD weight decay must be finite and >= 0, got {}", options.weight_decay));
  }
  if (options.momentum > 0.0) velocity_.assign(size, T(0));
}

template <class T>
std::vector<StateArray<T>> Sgd<T>::state() {
  if (velocity_.empty()) return {};
  return {{"momentum", std::span<T>(velocity_)}};
}

template <class T>
void Sgd<T>::update(T* parameters, const T* gradients, std::size_t begin, std::size_t end,
                    double learning_rate, std::int64_t /*step*/) {
  // Coefficients converted to T once, so the loops are pure T arithmetic on restrict
  // pointers that the compiler vectorises; one branch per call, none per element. Each
  // element is read and written once: the pass is bound by memory traffic (5 arrays of
  // the arena's size with momentum), not by arithmetic.
  const T lr = static_cast<T>(learning_rate);
  const T mu = static_cast<T>(options_.momentum);
  const T wd = static_cast<T>(options_.weight_decay);
  const std::size_t n = end - begin;
  T* __restrict p = parameters + begin;
  const T* __restrict g = gradients + begin;
  if (velocity_.empty()) {
    for (std::size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  T* __restrict v = velocity_.data() + begin;
  if (options_.nesterov) {
    for (std::size_t i = 0; i < n; ++i) {
      const T gi = g[i] + wd * p[i];
      v[i] = mu * v[i] + gi;
      p[i] -= lr * (gi + mu * v[i]);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = mu * v[i] + (g[i] + wd * p[i]);
      p[i] -= lr * v[i];
    }
  }
}

template class Sgd<float>;
template class Sgd<double>;

}  // namespace ringdp::nn
