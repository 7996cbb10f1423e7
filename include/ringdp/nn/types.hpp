#pragma once
/// \file
/// The matrix types and arena bookkeeping shared by every part of `ringdp::nn`.
///
/// Activations are column-major matrices with one sample per column (features x batch),
/// so a Dense layer is one GEMM `Y = W X` over the whole batch.
/// Every template of `ringdp::nn` is compiled for `float` (training) and `double` (the
/// gradient check) only.

#include <Eigen/Core>
#include <cstddef>
#include <string>

namespace ringdp::nn {

/// A dense column-major matrix; activations are features x batch.
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// A column vector (biases).
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// A read-only view of a contiguous column-major matrix: binds to a `Matrix<T>` or to an
/// `Eigen::Map` over a caller's buffer (a loader's batch) without copying.
template <class T>
using ConstMatrixRef = Eigen::Ref<const Matrix<T>>;

/// A half-open range [offset, offset + size) of elements in the parameter or gradient arena.
struct ArenaRange {
  std::size_t offset = 0;
  std::size_t size = 0;
  /// One past the last element.
  [[nodiscard]] std::size_t end() const noexcept { return offset + size; }
  friend bool operator==(const ArenaRange&, const ArenaRange&) = default;
};

/// One named parameter tensor inside the arena: a `rows` x `cols` column-major block at
/// `offset` (the gradient of the tensor sits at the same offset in the gradient arena).
/// Names look like `"layer2.dense.weight"`; checkpoints and tools use them.
struct TensorInfo {
  std::string name;
  std::size_t offset = 0;
  std::size_t rows = 0;
  std::size_t cols = 0;
  /// Number of elements (rows x cols).
  [[nodiscard]] std::size_t size() const noexcept { return rows * cols; }
};

}  // namespace ringdp::nn
