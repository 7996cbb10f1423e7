#include "nn/kernels.hpp"

namespace ringdp::nn::detail {

// Plain loops over restrict pointers, vectorised by the compiler: every element gets the
// same IEEE operations whether it falls in a vector body or a scalar tail, so the results
// do not depend on where a thread's block starts.

template <class T>
void add_bias(T* y, Eigen::Index ldy, Eigen::Index rows, Eigen::Index cols, const T* b, bool relu) {
  const T* __restrict bias = b;
  for (Eigen::Index j = 0; j < cols; ++j) {
    T* __restrict col = y + j * ldy;
    if (relu) {
      for (Eigen::Index i = 0; i < rows; ++i) {
        const T v = col[i] + bias[i];
        col[i] = v < T(0) ? T(0) : v;
      }
    } else {
      for (Eigen::Index i = 0; i < rows; ++i) col[i] += bias[i];
    }
  }
}

template <class T>
void relu_mask(T* dx, Eigen::Index ld, Eigen::Index rows, Eigen::Index cols, const T* y) {
  for (Eigen::Index j = 0; j < cols; ++j) {
    T* __restrict d = dx + j * ld;
    const T* __restrict out = y + j * ld;
    for (Eigen::Index i = 0; i < rows; ++i) d[i] = out[i] > T(0) ? d[i] : T(0);
  }
}

template <class T>
void row_sums(const T* a, Eigen::Index lda, Eigen::Index rows, Eigen::Index cols, T* sums) {
  T* __restrict s = sums;
  for (Eigen::Index i = 0; i < rows; ++i) s[i] = T(0);
  for (Eigen::Index j = 0; j < cols; ++j) {
    const T* __restrict col = a + j * lda;
    for (Eigen::Index i = 0; i < rows; ++i) s[i] += col[i];
  }
}

template void add_bias<float>(float*, Eigen::Index, Eigen::Index, Eigen::Index, const float*, bool);
template void add_bias<double>(double*, Eigen::Index, Eigen::Index, Eigen::Index, const double*,
                               bool);
template void relu_mask<float>(float*, Eigen::Index, Eigen::Index, Eigen::Index, const float*);
template void relu_mask<double>(double*, Eigen::Index, Eigen::Index, Eigen::Index, const double*);
template void row_sums<float>(const float*, Eigen::Index, Eigen::Index, Eigen::Index, float*);
template void row_sums<double>(const double*, Eigen::Index, Eigen::Index, Eigen::Index, double*);

}  // namespace ringdp::nn::detail
