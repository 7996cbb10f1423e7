#pragma once
/// \file
/// The base of the tensor-parallel Dense layers: a block of a Dense layer's weight and the
/// matching bias, held by one rank of a tensor group.

#include <cstddef>
#include <span>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/layer.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/parallel/slice.hpp"
#include "ringdp/types.hpp"

namespace ringdp::parallel {

/// What ColumnParallelDense and RowParallelDense share: of the whole Dense layer y = W x + b
/// (W: outputs x inputs), this rank holds the block W[rows, cols] and b[rows], in the
/// arenas as nn::Dense lays out its own (weight column-major, then bias); the whole
/// layer's sizes and initialisation; the tensor group its allreduces run on. The derived
/// layers choose the block (one of the two Slices is the whole width) and the forward and
/// backward passes. Not thread-safe; the communicator must outlive the layer.
template <class T>
class SplitDense : public nn::Layer<T> {
 public:
  [[nodiscard]] std::vector<nn::TensorShape> parameter_shapes() const override;
  void bind(std::span<T> parameters, std::span<T> gradients) override;
  /// Draws the WHOLE layer's weights from `rng` in nn::Dense's order (column-major, with
  /// the whole layer's fans) and keeps this rank's block; the bias starts at zero. Every
  /// rank thus holds exactly its block of the unsplit layer initialised from the same
  /// generator state, and the generator ends where the unsplit layer leaves it.
  void initialize(nn::NormalGenerator& rng) override;

  /// The whole layer's sizes.
  [[nodiscard]] std::size_t full_inputs() const noexcept { return inputs_; }
  [[nodiscard]] std::size_t full_outputs() const noexcept { return outputs_; }
  /// Views of this rank's parameters and their gradients (valid after bind()).
  [[nodiscard]] Eigen::Map<nn::Matrix<T>>& weight() noexcept { return w_; }
  [[nodiscard]] Eigen::Map<nn::Vector<T>>& bias() noexcept { return b_; }
  [[nodiscard]] Eigen::Map<nn::Matrix<T>>& weight_grad() noexcept { return dw_; }
  [[nodiscard]] Eigen::Map<nn::Vector<T>>& bias_grad() noexcept { return db_; }
  /// Wall time this layer has spent in its tensor group's allreduces since it was made
  /// (seconds): the communication a step of the layer cannot overlap with its compute.
  [[nodiscard]] double communication_seconds() const noexcept { return communication_seconds_; }

 protected:
  /// `rows` x `cols`: this rank's block (the derived layer checked it).
  SplitDense(const Communicator& tensor, std::size_t inputs, std::size_t outputs, Slice rows,
             Slice cols, nn::Init init, Algorithm algorithm);
  /// In-place Sum over the tensor group of a matrix all its ranks hold in the same shape.
  void allreduce_sum(nn::Matrix<T>& m) const;

  std::size_t inputs_;
  std::size_t outputs_;
  Slice rows_;
  Slice cols_;
  Eigen::Map<nn::Matrix<T>> w_{nullptr, 0, 0};
  Eigen::Map<nn::Vector<T>> b_{nullptr, 0};
  Eigen::Map<nn::Matrix<T>> dw_{nullptr, 0, 0};
  Eigen::Map<nn::Vector<T>> db_{nullptr, 0};

 private:
  const Communicator& tensor_;
  nn::Init init_;
  Algorithm algorithm_;
  mutable double communication_seconds_ = 0.0;
};

extern template class SplitDense<float>;
extern template class SplitDense<double>;

}  // namespace ringdp::parallel
