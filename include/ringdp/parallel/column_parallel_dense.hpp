#pragma once
/// \file
/// A Dense layer split by output rows over a tensor group (the first of the conjugate
/// pair; see row_parallel_dense.hpp for the second).

#include <cstddef>
#include <string>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/parallel/slice.hpp"
#include "ringdp/parallel/split_dense.hpp"
#include "ringdp/types.hpp"

namespace ringdp::parallel {

/// The rows of the Dense layer y = W x + b (W: outputs x inputs) that tensor rank t holds:
/// W[S, :] and b[S] for its Slice S = split_evenly(outputs, T, t) of the outputs.
///
/// - forward: y_S = W[S, :] x + b[S], no communication; the input x is the whole input,
///   the same on every rank of the group, and the output is this rank's rows only.
/// - backward: dW[S, :] = dy_S x^T and db[S] = row sums of dy_S, local; the input gradient
///   dx = sum over t of W[S_t, :]^T dy_{S_t} is ONE allreduce (Sum) over the group, the
///   same bits on every rank.
///
/// This is Megatron-LM's column-parallel linear with its "identity forward, allreduce
/// backward" operator on the input. Followed by an element-wise activation on the slice
/// and a RowParallelDense over the same slices, a pair costs one allreduce forward and one
/// backward. forward() is local; backward() with a non-null dx is collective over the
/// tensor group (every rank calls it, as every rank runs the same model). Widths that T
/// does not divide are split unevenly; each rank needs at least one output
/// (InvalidArgument otherwise).
template <class T>
class ColumnParallelDense final : public SplitDense<T> {
 public:
  /// `tensor` (must outlive the layer) is the tensor group; `inputs` x `outputs` the sizes
  /// of the whole layer. `algorithm` reduces the input gradients (Auto: by size, the
  /// fastest measured for small messages).
  ColumnParallelDense(const Communicator& tensor, std::size_t inputs, std::size_t outputs,
                      nn::Init init = nn::Init::He, Algorithm algorithm = Algorithm::Auto);

  [[nodiscard]] std::string kind() const override { return "column_dense"; }
  [[nodiscard]] std::size_t input_size() const override { return this->inputs_; }
  /// The rows this rank holds (the size of its output slice).
  [[nodiscard]] std::size_t output_size() const override { return this->rows_.size; }
  /// This rank's rows of the whole layer's outputs.
  [[nodiscard]] Slice rows() const noexcept { return this->rows_; }

  void forward(const nn::ConstMatrixRef<T>& x, nn::Matrix<T>& y) override;
  void backward(const nn::ConstMatrixRef<T>& x, const nn::ConstMatrixRef<T>& y,
                const nn::ConstMatrixRef<T>& dy, nn::Matrix<T>* dx) override;
};

extern template class ColumnParallelDense<float>;
extern template class ColumnParallelDense<double>;

}  // namespace ringdp::parallel
