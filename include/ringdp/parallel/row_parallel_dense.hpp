#pragma once
/// \file
/// A Dense layer split by input columns over a tensor group (the second of the conjugate
/// pair; see column_parallel_dense.hpp for the first).

#include <cstddef>
#include <string>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/parallel/slice.hpp"
#include "ringdp/parallel/split_dense.hpp"
#include "ringdp/types.hpp"

namespace ringdp::parallel {

/// The columns of the Dense layer y = W x + b (W: outputs x inputs) that tensor rank t
/// holds: W[:, S] for its Slice S = split_evenly(inputs, T, t) of the inputs, and the
/// whole bias b, replicated on every rank of the group.
///
/// - forward: the partial products W[:, S_t] x_S are summed by ONE allreduce (Sum) over
///   the group, then b is added: y is the whole output, the same bits on every rank.
///   x is this rank's slice of the input (what a ColumnParallelDense over the same slices,
///   and an activation, gave it).
/// - backward: dW[:, S] = dy x_S^T, db = row sums of dy and dx_S = W[:, S]^T dy, all
///   local: dy is the same on every rank, so no communication, and db comes out the same
///   bits on every rank, so the replicated bias stays identical across the group.
///
/// This is Megatron-LM's row-parallel linear with its "allreduce forward, identity
/// backward" operator on the output. forward() is collective over the tensor group;
/// backward() is local. Each rank needs at least one input column (InvalidArgument
/// otherwise).
template <class T>
class RowParallelDense final : public SplitDense<T> {
 public:
  /// `tensor` (must outlive the layer) is the tensor group; `inputs` x `outputs` the sizes
  /// of the whole layer. `algorithm` reduces the partial outputs (Auto: by size, the
  /// fastest measured for small messages).
  RowParallelDense(const Communicator& tensor, std::size_t inputs, std::size_t outputs,
                   nn::Init init = nn::Init::He, Algorithm algorithm = Algorithm::Auto);

  [[nodiscard]] std::string kind() const override { return "row_dense"; }
  /// The input columns this rank holds (the size of its input slice).
  [[nodiscard]] std::size_t input_size() const override { return this->cols_.size; }
  [[nodiscard]] std::size_t output_size() const override { return this->outputs_; }
  /// This rank's columns of the whole layer's inputs.
  [[nodiscard]] Slice columns() const noexcept { return this->cols_; }

  void forward(const nn::ConstMatrixRef<T>& x, nn::Matrix<T>& y) override;
  void backward(const nn::ConstMatrixRef<T>& x, const nn::ConstMatrixRef<T>& y,
                const nn::ConstMatrixRef<T>& dy, nn::Matrix<T>* dx) override;
};

extern template class RowParallelDense<float>;
extern template class RowParallelDense<double>;

}  // namespace ringdp::parallel
