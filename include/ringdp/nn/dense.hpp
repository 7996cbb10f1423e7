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

/// What a Dense layer applies to W x + b in the output pass of its product.
enum class Activation {
  None,  ///< y = W x + b
  ReLU,  ///< y = max(W x + b, 0): the layer and the ReLU after it in one pass
};

/// Dense (fully connected) layer with weight W (outputs x inputs) and bias b (outputs).
/// Forward is one GEMM over the batch, with the bias (and optionally a ReLU) applied to each
/// block of the result while it is still in the computing thread's cache; backward is
/// dW = dy x^T, db = row sums of dy and, when wanted, dx = W^T dy (optionally masked by the
/// ReLU before the layer, in the same way). Parameters live in the model's arena: W first
/// (column-major), then b.
///
/// Threads: with a ThreadPool (Layer::set_thread_pool()) every product is split into
/// row or column blocks of its result, one per thread (split_range()), and each thread
/// runs the GEMM of its block alone; every output element is summed by one thread in a
/// fixed order, so the results are deterministic for a fixed thread count. The GEMM is
/// OpenBLAS's when ringdp is built with it (gemm_library()), Eigen's otherwise; either
/// runs single-threaded inside each block. Not thread-safe.
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

  /// y = activation(W x + b), y resized to outputs x batch.
  void forward(const ConstMatrixRef<T>& x, Matrix<T>& y, Activation activation);
  /// The parameter half of backward(): dW = dy x^T and db = row sums of dy, overwriting
  /// the layer's slice of the gradient arena.
  void backward_parameters(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& dy);
  /// The input half of backward(): dx = W^T dy (resized to inputs x batch). With
  /// `relu_output` (the output of a ReLU feeding this layer, inputs x batch), the ReLU's
  /// backward is applied on the way: dx = 0 wherever relu_output <= 0, so dx is the
  /// gradient of the ReLU's input.
  void backward_input(const ConstMatrixRef<T>& dy, Matrix<T>& dx,
                      const Matrix<T>* relu_output = nullptr);

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

/// The GEMM behind Dense: "OpenBLAS (<its configuration>; core <kernel>)" or "Eigen x.y.z".
[[nodiscard]] std::string gemm_library();

extern template class Dense<float>;
extern template class Dense<double>;

}  // namespace ringdp::nn
