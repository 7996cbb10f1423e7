#include "ringdp/nn/activations.hpp"

#include <fmt/format.h>

#include "ringdp/error.hpp"

namespace ringdp::nn {
namespace {

void check_size(std::size_t size, const char* kind) {
  if (size == 0) throw InvalidArgument(fmt::format("{} layer needs a positive size", kind));
}

}  // namespace

template <class T>
ReLU<T>::ReLU(std::size_t size) : size_(size) {
  check_size(size, "ReLU");
}

template <class T>
void ReLU<T>::forward(const ConstMatrixRef<T>& x, Matrix<T>& y) {
  y.resize(x.rows(), x.cols());
  y.array() = x.array().max(T(0));
}

template <class T>
void ReLU<T>::backward(const ConstMatrixRef<T>& /*x*/, const ConstMatrixRef<T>& y,
                       const ConstMatrixRef<T>& dy, Matrix<T>* dx) {
  if (dx == nullptr) return;
  dx->resize(dy.rows(), dy.cols());
  // y > 0 exactly where x > 0, so the cached output suffices; select() vectorises.
  dx->array() = (y.array() > T(0)).select(dy.array(), T(0));
}

template <class T>
Tanh<T>::Tanh(std::size_t size) : size_(size) {
  check_size(size, "Tanh");
}

template <class T>
void Tanh<T>::forward(const ConstMatrixRef<T>& x, Matrix<T>& y) {
  y.resize(x.rows(), x.cols());
  y.array() = x.array().tanh();
}

template <class T>
void Tanh<T>::backward(const ConstMatrixRef<T>& /*x*/, const ConstMatrixRef<T>& y,
                       const ConstMatrixRef<T>& dy, Matrix<T>* dx) {
  if (dx == nullptr) return;
  dx->resize(dy.rows(), dy.cols());
  // d tanh(x)/dx = 1 - tanh(x)^2, taken from the cached output.
  dx->array() = dy.array() * (T(1) - y.array().square());
}

template class ReLU<float>;
template class ReLU<double>;
template class Tanh<float>;
template class Tanh<double>;

}  // namespace ringdp::nn
