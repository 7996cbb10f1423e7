#include "ringdp/nn/dense.hpp"

#include <fmt/format.h>

#include <new>

#include "ringdp/error.hpp"

namespace ringdp::nn {

template <class T>
Dense<T>::Dense(std::size_t inputs, std::size_t outputs, Init init)
    : inputs_(inputs), outputs_(outputs), init_(init) {
  if (inputs == 0 || outputs == 0) {
    throw InvalidArgument(
        fmt::format("Dense layer needs positive sizes, got {} -> {}", inputs, outputs));
  }
}

template <class T>
std::vector<TensorShape> Dense<T>::parameter_shapes() const {
  return {{"weight", outputs_, inputs_}, {"bias", outputs_, 1}};
}

template <class T>
void Dense<T>::bind(std::span<T> parameters, std::span<T> gradients) {
  const std::size_t nw = outputs_ * inputs_;
  if (parameters.size() != nw + outputs_ || gradients.size() != nw + outputs_) {
    throw InvalidArgument(fmt::format("Dense::bind: slice of {} / {} elements, expected {}",
                                      parameters.size(), gradients.size(), nw + outputs_));
  }
  const auto rows = static_cast<Eigen::Index>(outputs_);
  const auto cols = static_cast<Eigen::Index>(inputs_);
  new (&w_) Eigen::Map<Matrix<T>>(parameters.data(), rows, cols);
  new (&b_) Eigen::Map<Vector<T>>(parameters.data() + nw, rows);
  new (&dw_) Eigen::Map<Matrix<T>>(gradients.data(), rows, cols);
  new (&db_) Eigen::Map<Vector<T>>(gradients.data() + nw, rows);
}

template <class T>
void Dense<T>::initialize(NormalGenerator& rng) {
  const double stddev = init_stddev(init_, inputs_, outputs_);
  // Draw in double and round once, so float and double models from one seed agree to
  // float precision; column-major order over W fixes which weight gets which draw.
  T* w = w_.data();
  const std::size_t n = outputs_ * inputs_;
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<T>(stddev * rng.normal());
  b_.setZero();
}

template <class T>
void Dense<T>::forward(const ConstMatrixRef<T>& x, Matrix<T>& y) {
  // Start from the bias in every column and let the GEMM accumulate onto it (Eigen's GEMM
  // kernel computes C += A B anyway): one pass over y fewer than GEMM-then-add-bias.
  // noalias: y never overlaps W or x, so no temporary is needed.
  y = b_.replicate(1, x.cols());
  y.noalias() += w_ * x;
}

template <class T>
void Dense<T>::backward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& /*y*/,
                        const ConstMatrixRef<T>& dy, Matrix<T>* dx) {
  // dW = dy x^T sums the per-sample outer products over the batch in one GEMM; the loss
  // already carries the 1/batch factor, so no scaling here.
  dw_.noalias() = dy * x.transpose();
  db_.noalias() = dy.rowwise().sum();
  if (dx != nullptr) {
    dx->resize(static_cast<Eigen::Index>(inputs_), dy.cols());
    dx->noalias() = w_.transpose() * dy;
  }
}

template class Dense<float>;
template class Dense<double>;

}  // namespace ringdp::nn
