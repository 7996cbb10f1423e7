#pragma once
// The one matrix product of the nn kernels: OpenBLAS's sgemm/dgemm when ringdp is built
// with it (RINGDP_BLAS), Eigen's own GEMM otherwise. Private to lib/nn.

#include <Eigen/Core>

namespace ringdp::nn::detail {

/// Column-major C (m x n) = op(A) op(B), or C += op(A) op(B) when `accumulate`; op(A) is
/// m x k (A itself k x m when `transpose_a`), op(B) is k x n; lda, ldb, ldc are the
/// distances between columns. Runs on the calling thread only: the kernels split their
/// products among ringdp's compute threads themselves. Deterministic: the same operands give
/// the same bits on every call.
template <class T>
void gemm(bool transpose_a, bool transpose_b, Eigen::Index m, Eigen::Index n, Eigen::Index k,
          const T* a, Eigen::Index lda, const T* b, Eigen::Index ldb, bool accumulate, T* c,
          Eigen::Index ldc);

}  // namespace ringdp::nn::detail
