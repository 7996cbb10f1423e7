#include "ringdp/parallel/row_parallel_dense.hpp"

#include "parallel/dense_slice.hpp"
#include "ringdp/collectives/collectives.hpp"

namespace ringdp::parallel {

template <class T>
RowParallelDense<T>::RowParallelDense(const Communicator& tensor, std::size_t inputs,
                                      std::size_t outputs, nn::Init init, Algorithm algorithm)
    : tensor_(tensor),
      inputs_(inputs),
      outputs_(outputs),
      columns_(detail::checked_slice(inputs, tensor.size(), tensor.rank(), "RowParallelDense",
                                     "inputs", inputs, outputs)),
      init_(init),
      algorithm_(algorithm) {}

template <class T>
std::vector<nn::TensorShape> RowParallelDense<T>::parameter_shapes() const {
  return {{"weight", outputs_, columns_.size}, {"bias", outputs_, 1}};
}

template <class T>
void RowParallelDense<T>::bind(std::span<T> parameters, std::span<T> gradients) {
  detail::bind_weight_and_bias(parameters, gradients, outputs_, columns_.size, outputs_, w_, b_,
                               dw_, db_, "RowParallelDense");
}

template <class T>
void RowParallelDense<T>::initialize(nn::NormalGenerator& rng) {
  detail::draw_block(rng, init_, outputs_, inputs_, Slice{0, outputs_}, columns_, w_);
  b_.setZero();
}

template <class T>
void RowParallelDense<T>::forward(const nn::ConstMatrixRef<T>& x, nn::Matrix<T>& y) {
  // Each rank multiplies its columns of W by its rows of x; the sum over the ranks is the
  // whole product. The bias is added after the sum, once (it is replicated, not split).
  y.resize(static_cast<Eigen::Index>(outputs_), x.cols());
  y.noalias() = w_ * x;
  allreduce<T>(tensor_, std::span<T>(y.data(), static_cast<std::size_t>(y.size())), ReduceOp::Sum,
               algorithm_);
  y.colwise() += b_;
}

template <class T>
void RowParallelDense<T>::backward(const nn::ConstMatrixRef<T>& x,
                                   const nn::ConstMatrixRef<T>& /*y*/,
                                   const nn::ConstMatrixRef<T>& dy, nn::Matrix<T>* dx) {
  // dy is the same on every rank of the group (the allreduced output's gradient), so the
  // bias gradient is too, bit for bit, and the input gradient of this rank's columns
  // needs only this rank's columns of W: no communication.
  dw_.noalias() = dy * x.transpose();
  db_.noalias() = dy.rowwise().sum();
  if (dx == nullptr) return;
  dx->resize(static_cast<Eigen::Index>(columns_.size), dy.cols());
  dx->noalias() = w_.transpose() * dy;
}

template class RowParallelDense<float>;
template class RowParallelDense<double>;

}  // namespace ringdp::parallel
