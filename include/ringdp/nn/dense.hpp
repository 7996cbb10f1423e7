#pragma once
/// \file
/// Fully connected layer: y = W x + b over a batch of columns.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "ringdp/nn/init.hpp"
#include "ringdp/nn/layer.hpp"
#include "ringdp/nn/types.hpp"

namespace ringdp::nn {

/// Dense (fully connected) layer with weight W (outputs x inputs) and bias b (outputs).
/// Forward is one GEMM over the batch; backward is dW = dy x^T, db = row sums of dy and,
/// when wanted, dx = W^T dy. Parameters live in the model's arena: W first (column-major),
/// then b. Not thread-safe (Eigen may use its own threads inside a GEMM if the application
/// enabled them; ringdp starts none).
template <class T>
class Dense final : public Layer<T> {
 public:
  /// Throws InvalidArgument when a size is zero.
  Dense(std::size_t inputs, std::size_t outputs, Init init = Init::He);

  [[nodiscard]] std::string kind() const override { return "dense"; }
  [[nodiscard]] std::size_t input_size() const override { return inputs_; }
  [[nodiscard]] std::size_t output_size() const override { return outputs_; }
  [[nodiscard]] Init init() const noexcept { return init_; }

  [[nodiscard]] std::vector<TensorShape> parameter_shapes() const override;
  void bind(std::span<T> parameters, std::span<T> gradients) override;
  void initialize(NormalGenerator& rng) override;

  void forward(const ConstMatrixRef<T>& x, Matrix<T>& y) override;
  void backward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& y, const ConstMatrixRef<T>& dy,
                Matrix<T>* dx) override;

  /// Views of the parameters and their gradients (valid after bind()).
  [[nodiscard]] Eigen::Map<Matrix<T>>& weight() noexcept { return w_; }
  [[nodiscard]] Eigen::Map<Vector<T>>& bias() noexcept { return b_; }
  [[nodiscard]] Eigen::Map<Matrix<T>>& weight_grad() noexcept { return dw_; }
  [[nodiscard]] Eigen::Map<Vector<T>>& bias_grad() noexcept { return db_; }

 private:
  std::size_t inputs_;
  std::size_t outputs_;
  Init init_;
  // Unbound until bind(): maps over null with the right shape would be invalid, so they
  // start empty and are re-seated with placement new (Eigen's documented way).
  Eigen::Map<Matrix<T>> w_{nullptr, 0, 0};
  Eigen::Map<Vector<T>> b_{nullptr, 0};
  Eigen::Map<Matrix<T>> dw_{nullptr, 0, 0};
  Eigen::Map<Vector<T>> db_{nullptr, 0};
};

extern template class Dense<float>;
extern template class Dense<double>;

}  // namespace ringdp::nn
