#include "ringdp/nn/dense.hpp"

#include <fmt/format.h>

#include <new>

#include "nn/gemm.hpp"
#include "nn/kernels.hpp"
#include "ringdp/error.hpp"

namespace ringdp::nn {
namespace {

// The work of a product whose `rows` the threads split on cache lines, as for_each_part
// takes it: 0 (run on the caller) when the rows fit one line, since every part but the
// first would be empty and waking the pool would buy nothing (the 10 logits of an MNIST
// classifier: one futex wake-up per step saved with two threads). The caller's part is
// then the same product as with one thread, so the bits do not change.
template <class T>
std::size_t row_split_work(std::size_t rows, Eigen::Index batch, std::size_t depth) {
  if (rows <= detail::kLineFloats<T>) return 0;
  return rows * static_cast<std::size_t>(batch) * depth;
}

}  // namespace

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
  forward(x, y, Activation::None);
}

template <class T>
void Dense<T>::forward(const ConstMatrixRef<T>& x, Matrix<T>& y, Activation activation) {
  const Eigen::Index batch = x.cols();
  const auto out = static_cast<Eigen::Index>(outputs_);
  const auto in = static_cast<Eigen::Index>(inputs_);
  y.resize(out, batch);
  const T* w = w_.data();
  const T* b = b_.data();
  const T* xp = x.data();
  const Eigen::Index ldx = x.outerStride();
  T* yp = y.data();
  // Row blocks of y = W x: each thread packs only its rows of W (the large operand) and all
  // of x. Its block (at most a few hundred kB) is still in its cache when the bias and the
  // activation are applied, so they cost no extra pass over memory.
  for_each_part(
      this->thread_pool(), row_split_work<T>(outputs_, batch, in), [&](int part, int parts) {
        const IndexRange rows = split_range(outputs_, parts, part, detail::kLineFloats<T>);
        if (rows.empty()) return;
        const auto r0 = static_cast<Eigen::Index>(rows.begin);
        const auto m = static_cast<Eigen::Index>(rows.size());
        detail::gemm<T>(false, false, m, batch, in, w + r0, out, xp, ldx, false, yp + r0, out);
        detail::add_bias(yp + r0, out, m, batch, b + r0, activation == Activation::ReLU);
      });
}

template <class T>
void Dense<T>::backward(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& /*y*/,
                        const ConstMatrixRef<T>& dy, Matrix<T>* dx) {
  backward_parameters(x, dy);
  if (dx != nullptr) backward_input(dy, *dx);
}

template <class T>
void Dense<T>::backward_parameters(const ConstMatrixRef<T>& x, const ConstMatrixRef<T>& dy) {
  // dW = dy x^T sums the per-sample outer products over the batch in one GEMM; the loss
  // already carries the 1/batch factor, so no scaling here. Column blocks of dW (contiguous
  // in the arena) with the matching rows of x, and row blocks of db; each element's sum
  // over the batch is one thread's, in a fixed order.
  const Eigen::Index batch = dy.cols();
  const auto out = static_cast<Eigen::Index>(outputs_);
  const auto in = static_cast<Eigen::Index>(inputs_);
  const T* dyp = dy.data();
  const Eigen::Index ldy = dy.outerStride();
  const T* xp = x.data();
  const Eigen::Index ldx = x.outerStride();
  T* dw = dw_.data();
  T* db = db_.data();
  for_each_part(
      this->thread_pool(), static_cast<std::size_t>(out * in * batch), [&](int part, int parts) {
        const IndexRange cols = split_range(inputs_, parts, part);
        if (!cols.empty()) {
          const auto c0 = static_cast<Eigen::Index>(cols.begin);
          detail::gemm<T>(false, true, out, static_cast<Eigen::Index>(cols.size()), batch, dyp, ldy,
                          xp + c0, ldx, false, dw + c0 * out, out);
        }
        const IndexRange rows = split_range(outputs_, parts, part, detail::kLineFloats<T>);
        detail::row_sums(dyp + rows.begin, ldy, static_cast<Eigen::Index>(rows.size()), batch,
                         db + rows.begin);
      });
}

template <class T>
void Dense<T>::backward_input(const ConstMatrixRef<T>& dy, Matrix<T>& dx,
                              const Matrix<T>* relu_output) {
  const Eigen::Index batch = dy.cols();
  const auto out = static_cast<Eigen::Index>(outputs_);
  const auto in = static_cast<Eigen::Index>(inputs_);
  dx.resize(in, batch);
  if (relu_output != nullptr && (relu_output->rows() != in || relu_output->cols() != batch)) {
    throw InvalidArgument(
        fmt::format("Dense::backward_input: ReLU output is {} x {}, expected {} x {}",
                    relu_output->rows(), relu_output->cols(), in, batch));
  }
  const T* w = w_.data();
  const T* dyp = dy.data();
  const Eigen::Index ldy = dy.outerStride();
  T* dxp = dx.data();
  const T* mask = relu_output != nullptr ? relu_output->data() : nullptr;
  // Row blocks of dx = W^T dy: thread t reads the columns of W for its rows of dx, and
  // applies the ReLU mask to its block while the block is in its cache.
  for_each_part(this->thread_pool(), row_split_work<T>(inputs_, batch, out),
                [&](int part, int parts) {
                  const IndexRange rows = split_range(inputs_, parts, part, detail::kLineFloats<T>);
                  if (rows.empty()) return;
                  const auto r0 = static_cast<Eigen::Index>(rows.begin);
                  const auto m = static_cast<Eigen::Index>(rows.size());
                  detail::gemm<T>(true, false, m, batch, out, w + r0 * out, out, dyp, ldy, false,
                                  dxp + r0, in);
                  if (mask != nullptr) detail::relu_mask(dxp + r0, in, m, batch, mask + r0);
                });
}

template class Dense<float>;
template class Dense<double>;

}  // namespace ringdp::nn
