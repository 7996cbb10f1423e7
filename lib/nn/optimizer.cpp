#include "ringdp/nn/optimizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ringdp/error.hpp"

namespace ringdp::nn {

template <class T>
void Optimizer<T>::step(std::span<T> parameters, std::span<const T> gradients,
                        double learning_rate) {
  if (parameters.size() != size_ || gradients.size() != size_) {
    throw InvalidArgument(
        fmt::format("{} optimizer made for {} parameters got {} parameters and {} gradients",
                    kind(), size_, parameters.size(), gradients.size()));
  }
  if (!(learning_rate >= 0.0) || !std::isfinite(learning_rate)) {
    throw InvalidArgument(
        fmt::format("{}: learning rate must be finite and >= 0, got {}", kind(), learning_rate));
  }
  ++step_count_;
  update(parameters.data(), gradients.data(), size_, learning_rate, step_count_);
}

template <class T>
void Optimizer<T>::set_step_count(std::int64_t steps) {
  if (steps < 0) throw InvalidArgument(fmt::format("{}: negative step count {}", kind(), steps));
  step_count_ = steps;
}

template <class T>
void Optimizer<T>::reset() {
  for (StateArray<T>& s : state()) std::fill(s.data.begin(), s.data.end(), T(0));
  step_count_ = 0;
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace ringdp::nn
