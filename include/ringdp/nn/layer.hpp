#pragma once
/// \file
/// The interface every layer of a Sequential model implements.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "ringdp/nn/init.hpp"
#include "ringdp/nn/thread_pool.hpp"
#include "ringdp/nn/types.hpp"

namespace ringdp::nn {

/// Shape of one parameter tensor of a layer, before it has a place in the arena.
struct TensorShape {
  std::string name;  ///< "weight", "bias"
  std::size_t rows = 0;
  std::size_t cols = 0;
};

/// A layer maps an `input_size() x batch` matrix to an `output_size() x batch` matrix.
/// Layers own no parameter memory: the model hands each layer its slice of the flat
/// parameter and gradient arenas (bind()), and the layer keeps Eigen maps into them.
/// Layers keep no per-batch state: the model passes the cached input and output back into
/// backward(). Not thread-safe; one model per thread. A layer may split its kernels among
/// the compute threads of a ThreadPool (set_thread_pool(); Sequential sets it on every layer).
template <class T>
class Layer {
 public:
  virtual ~Layer() = default;
  Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  /// Short kind name: "dense", "relu", "tanh".
  [[nodiscard]] virtual std::string kind() const = 0;
  [[nodiscard]] virtual std::size_t input_size() const = 0;
  [[nodiscard]] virtual std::size_t output_size() const = 0;

  /// The parameter tensors in the order they are laid out in the layer's arena slice.
  [[nodiscard]] virtual std::vector<TensorShape> parameter_shapes() const { return {}; }
  /// Gives the layer its slices of the arenas (each of the total size of
  /// parameter_shapes()). The memory must outlive the layer's use.
  virtual void bind(std::span<T> /*parameters*/, std::span<T> /*gradients*/) {}
  /// Draws initial parameters from `rng`, in a fixed order (column-major, tensor by tensor).
  virtual void initialize(NormalGenerator& /*rng*/) {}

  /// y = f(x). `y` is resized to output_size() x x.cols() (a no-op when the batch size is
  /// unchanged, so steady-state training allocates nothing).
  virtual void forward(const ConstMatrixRef<T>& x, Matrix<T>& y) = 0;

  /// Given the forward pass's `x` and `y` and dL/dy, writes the parameter gradients into
  /// the gradient arena (overwriting, not accumulating) and, when `dx` is not null,
  /// dL/dx into `*dx` (resized as needed). The first layer passes `dx = nullptr` to skip
  /// the input gradient nobody needs.
  virtual void backward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& y,
                        const ConstMatrixRef<T>& dy, Matrix<T>* dx) = 0;

  /// The compute threads the layer's kernels may use (nullptr: the calling thread only).
  /// The pool must outlive its use by the layer.
  void set_thread_pool(ThreadPool* pool) noexcept { pool_ = pool; }
  [[nodiscard]] ThreadPool* thread_pool() const noexcept { return pool_; }

 private:
  ThreadPool* pool_ = nullptr;
};

}  // namespace ringdp::nn
