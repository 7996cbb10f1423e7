#pragma once
// The element-wise passes of the nn kernels and how a kernel decides how many threads to
// use. Private to lib/nn.

#include <Eigen/Core>
#include <cstddef>

namespace ringdp::nn::detail {

/// Elements of T in one 64-byte cache line: threads split rows on multiples of it.
template <class T>
inline constexpr std::size_t kLineFloats = 64 / sizeof(T);

/// y(i, j) += b(i), then y = max(y, 0) when `relu`, over a rows x cols block with leading
/// dimension ldy. A NaN stays NaN (max(NaN, 0) is NaN, as std::max(y, 0) gives).
template <class T>
void add_bias(T* y, Eigen::Index ldy, Eigen::Index rows, Eigen::Index cols, const T* b, bool relu);

/// dx(i, j) = 0 wherever y(i, j) <= 0 (the backward of y = ReLU(x)); dx and y share the
/// leading dimension ld.
template <class T>
void relu_mask(T* dx, Eigen::Index ld, Eigen::Index rows, Eigen::Index cols, const T* y);

/// sums(i) = sum over j of a(i, j), in the order j = 0, 1, ..., whatever the block.
template <class T>
void row_sums(const T* a, Eigen::Index lda, Eigen::Index rows, Eigen::Index cols, T* sums);

}  // namespace ringdp::nn::detail
