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
  // Blocks of whole cache lines (16 floats), so that no two threads write the same line.
  constexpr std::size_t kLine = 64 / sizeof(T);
  const std::int64_t step = step_count_;
  // for_each_part counts work in multiply-adds of a product; one element of the update
  // (reads and writes of 3-5 arrays, bound by memory) takes about as long as 16 of them
  // (SGD with momentum: 0.43 ns per element against 0.02 ns per multiply-add of the
  // step's GEMMs, one core of the development VM).
  constexpr std::size_t kWorkPerElement = 16;
  for_each_part(pool_, size_ * kWorkPerElement, [&](int part, int parts) {
    const IndexRange r = split_range(size_, parts, part, kLine);
    if (!r.empty()) {
      update(parameters.data(), gradients.data(), r.begin, r.end, learning_rate, step);
    }
  });
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
