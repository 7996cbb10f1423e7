#include "ringdp/parallel/column_parallel_dense.hpp"

#include "parallel/dense_slice.hpp"

namespace ringdp::parallel {

template <class T>
ColumnParallelDense<T>::ColumnParallelDense(const Communicator& tensor, std::size_t inputs,
                                            std::size_t outputs, nn::Init init, Algorithm algorithm)
    : SplitDense<T>(tensor, inputs, outputs,
                    detail::checked_slice(outputs, tensor.size(), tensor.rank(),
                                          "ColumnParallelDense", "outputs", inputs, outputs),
                    Slice{0, inputs}, init, algorithm) {}

template <class T>
void ColumnParallelDense<T>::forward(const nn::ConstMatrixRef<T>& x, nn::Matrix<T>& y) {
  // This rank's rows of the unsplit layer's output: nothing to exchange.
  y = this->b_.replicate(1, x.cols());
  y.noalias() += this->w_ * x;
}

template <class T>
void ColumnParallelDense<T>::backward(const nn::ConstMatrixRef<T>& x,
                                      const nn::ConstMatrixRef<T>& /*y*/,
                                      const nn::ConstMatrixRef<T>& dy, nn::Matrix<T>* dx) {
  this->dw_.noalias() = dy * x.transpose();
  this->db_.noalias() = dy.rowwise().sum();
  if (dx == nullptr) return;
  // Every output row depends on the whole input, so each rank's rows contribute a part of
  // every input's gradient: W^T dy = sum over the ranks of W[S_t, :]^T dy_{S_t}. The one
  // communication of the layer, and the only one per pair in backward.
  dx->resize(static_cast<Eigen::Index>(this->inputs_), dy.cols());
  dx->noalias() = this->w_.transpose() * dy;
  this->allreduce_sum(*dx);
}

template class ColumnParallelDense<float>;
template class ColumnParallelDense<double>;

}  // namespace ringdp::parallel
