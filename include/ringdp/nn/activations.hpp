#pragma once
/// \file
/// Element-wise activation layers (no parameters): ReLU and tanh.

#include <cstddef>
#include <string>

#include "ringdp/nn/layer.hpp"
#include "ringdp/nn/types.hpp"

namespace ringdp::nn {

/// y = max(x, 0). Backward passes dy where y > 0 (the subgradient at 0 is taken as 0).
template <class T>
class ReLU final : public Layer<T> {
 public:
  /// `size` features in and out; throws InvalidArgument when zero.
  explicit ReLU(std::size_t size);
  [[nodiscard]] std::string kind() const override { return "relu"; }
  [[nodiscard]] std::size_t input_size() const override { return size_; }
  [[nodiscard]] std::size_t output_size() const override { return size_; }
  void forward(const ConstMatrixRef<T>& x, Matrix<T>& y) override;
  void backward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& y, const ConstMatrixRef<T>& dy,
                Matrix<T>* dx) override;

 private:
  std::size_t size_;
};

/// y = tanh(x). Backward uses dy (1 - y^2), from the cached output.
template <class T>
class Tanh final : public Layer<T> {
 public:
  /// `size` features in and out; throws InvalidArgument when zero.
  explicit Tanh(std::size_t size);
  [[nodiscard]] std::string kind() const override { return "tanh"; }
  [[nodiscard]] std::size_t input_size() const override { return size_; }
  [[nodiscard]] std::size_t output_size() const override { return size_; }
  void forward(const ConstMatrixRef<T>& x, Matrix<T>& y) override;
  void backward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& y, const ConstMatrixRef<T>& dy,
                Matrix<T>* dx) override;

 private:
  std::size_t size_;
};

extern template class ReLU<float>;
extern template class ReLU<double>;
extern template class Tanh<float>;
extern template class Tanh<double>;

}  // namespace ringdp::nn
