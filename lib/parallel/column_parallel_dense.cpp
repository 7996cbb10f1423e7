#include "ringdp/parallel/column_parallel_dense.hpp"

#include "parallel/dense_slice.hpp"
#include "ringdp/collectives/collectives.hpp"

namespace ringdp::parallel {

template <class T>
ColumnParallelDense<T>::ColumnParallelDense(const Communicator& tensor, std::size_t inputs,
                                            std::size_t outputs, nn::Init init, Algorithm algorithm)
    : tensor_(tensor),
      inputs_(inputs),
      outputs_(outputs),
      rows_(detail::checked_slice(outputs, tensor.size(), tensor.rank(), "ColumnParallelDense",
                                  "outputs", inputs, outputs)),
      init_(init),
      algorithm_(algorithm) {}

template <class T>
std::vector<nn::TensorShape> ColumnParallelDense<T>::parameter_shapes() const {
  return {{"weight", rows_.size, inputs_}, {"bias", rows_.size, 1}};
}

template <class T>
void ColumnParallelDense<T>::bind(std::span<T> parameters, std::span<T> gradients) {
  detail::bind_weight_and_bias(parameters, gradients, rows_.size, inputs_, rows_.size, w_, b_, dw_,
                               db_, "ColumnParallelDense");
}

template <class T>
void ColumnParallelDense<T>::initialize(nn::NormalGenerator& rng) {
  detail::draw_block(rng, init_, outputs_, inputs_, rows_, Slice{0, inputs_}, w_);
  b_.setZero();
}

template <class T>
void ColumnParallelDense<T>::forward(const nn::ConstMatrixRef<T>& x, nn::Matrix<T>& y) {
  // This rank's rows of the unsplit layer's output: nothing to exchange.
  y = b_.replicate(1, x.cols());
  y.noalias() += w_ * x;
}

template <class T>
void ColumnParallelDense<T>::backward(const nn::ConstMatrixRef<T>& x,
                                      const nn::ConstMatrixRef<T>& /*y*/,
                                      const nn::ConstMatrixRef<T>& dy, nn::Matrix<T>* dx) {
  dw_.noalias() = dy * x.transpose();
  db_.noalias() = dy.rowwise().sum();
  if (dx == nullptr) return;
  // Every output row depends on the whole input, so each rank's rows contribute a part of
  // every input's gradient: W^T dy = sum over the ranks of W[S_t, :]^T dy_{S_t}. The one
  // communication of the layer, and the only one per pair in backward.
  dx->resize(static_cast<Eigen::Index>(inputs_), dy.cols());
  dx->noalias() = w_.transpose() * dy;
  allreduce<T>(tensor_, std::span<T>(dx->data(), static_cast<std::size_t>(dx->size())),
               ReduceOp::Sum, algorithm_);
}

template class ColumnParallelDense<float>;
template class ColumnParallelDense<double>;

}  // namespace ringdp::parallel
