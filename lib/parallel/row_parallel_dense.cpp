#include "ringdp/parallel/row_parallel_dense.hpp"

#include "parallel/dense_slice.hpp"

namespace ringdp::parallel {

template <class T>
RowParallelDense<T>::RowParallelDense(const Communicator& tensor, std::size_t inputs,
                                      std::size_t outputs, nn::Init init, Algorithm algorithm)
    : SplitDense<T>(tensor, inputs, outputs, Slice{0, outputs},
                    detail::checked_slice(inputs, tensor.size(), tensor.rank(), "RowParallelDense",
                                          "inputs", inputs, outputs),
                    init, algorithm) {}

template <class T>
void RowParallelDense<T>::forward(const nn::ConstMatrixRef<T>& x, nn::Matrix<T>& y) {
  // Each rank multiplies its columns of W by its rows of x; the sum over the ranks is the
  // whole product. The bias is added after the sum, once (it is replicated, not split).
  y.resize(static_cast<Eigen::Index>(this->outputs_), x.cols());
  y.noalias() = this->w_ * x;
  this->allreduce_sum(y);
  y.colwise() += this->b_;
}

template <class T>
void RowParallelDense<T>::backward(const nn::ConstMatrixRef<T>& x,
                                   const nn::ConstMatrixRef<T>& /*y*/,
                                   const nn::ConstMatrixRef<T>& dy, nn::Matrix<T>* dx) {
  // dy is the same on every rank of the group (the allreduced output's gradient), so the
  // bias gradient is too, bit for bit, and the input gradient of this rank's columns
  // needs only this rank's columns of W: no communication.
  this->dw_.noalias() = dy * x.transpose();
  this->db_.noalias() = dy.rowwise().sum();
  if (dx == nullptr) return;
  dx->resize(static_cast<Eigen::Index>(this->cols_.size), dy.cols());
  dx->noalias() = this->w_.transpose() * dy;
}

template class RowParallelDense<float>;
template class RowParallelDense<double>;

}  // namespace ringdp::parallel
