#include "nn/gemm.hpp"

#include <fmt/format.h>

#include <climits>
#include <string>

#include "ringdp/error.hpp"
#include "ringdp/nn/dense.hpp"

#ifdef RINGDP_USE_OPENBLAS
// The Fortran BLAS interface that OpenBLAS exports (LP64: 32-bit integers), declared here
// as Eigen does, so that no BLAS header is needed; and OpenBLAS's own thread control.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
void openblas_set_num_threads(int threads);
char* openblas_get_config();
char* openblas_get_corename();
}
#endif

#ifdef RINGDP_USE_OPENBLAS
namespace ringdp::nn::detail {
namespace {

int blas_int(Eigen::Index v) {
  if (v < 0 || v > INT_MAX) {
    throw InvalidArgument(fmt::format("gemm: dimension {} does not fit the BLAS's int", v));
  }
  return static_cast<int>(v);
}

// OpenBLAS would otherwise start its own threads inside every product, on the cores that
// ringdp's compute threads use already (each of which calls gemm on its share): set once,
// before the first product.
void single_threaded_blas() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

template <class T, class Gemm>
void blas_gemm(Gemm fn, bool ta, bool tb, Eigen::Index m, Eigen::Index n, Eigen::Index k,
               const T* a, Eigen::Index lda, const T* b, Eigen::Index ldb, bool accumulate, T* c,
               Eigen::Index ldc) {
  if (m == 0 || n == 0) return;
  single_threaded_blas();
  const char opa = ta ? 'T' : 'N';
  const char opb = tb ? 'T' : 'N';
  const int im = blas_int(m), in = blas_int(n), ik = blas_int(k);
  // BLAS wants leading dimensions >= 1 even for empty operands.
  const int ila = blas_int(std::max<Eigen::Index>(lda, 1));
  const int ilb = blas_int(std::max<Eigen::Index>(ldb, 1));
  const int ilc = blas_int(std::max<Eigen::Index>(ldc, 1));
  const T alpha = 1;
  const T beta = accumulate ? 1 : 0;
  fn(&opa, &opb, &im, &in, &ik, &alpha, a, &ila, b, &ilb, &beta, c, &ilc);
}

}  // namespace

template <>
void gemm<float>(bool ta, bool tb, Eigen::Index m, Eigen::Index n, Eigen::Index k, const float* a,
                 Eigen::Index lda, const float* b, Eigen::Index ldb, bool accumulate, float* c,
                 Eigen::Index ldc) {
  blas_gemm<float>(sgemm_, ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, Eigen::Index m, Eigen::Index n, Eigen::Index k, const double* a,
                  Eigen::Index lda, const double* b, Eigen::Index ldb, bool accumulate, double* c,
                  Eigen::Index ldc) {
  blas_gemm<double>(dgemm_, ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
}

}  // namespace ringdp::nn::detail

namespace ringdp::nn {

std::string gemm_library() {
  return fmt::format("OpenBLAS ({}; core {})", openblas_get_config(), openblas_get_corename());
}

}  // namespace ringdp::nn

#else  // Eigen's own GEMM

namespace ringdp::nn::detail {

namespace {

template <class T>
using StridedMap =
    Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>, 0, Eigen::OuterStride<> >;

}  // namespace

template <class T>
void gemm(bool ta, bool tb, Eigen::Index m, Eigen::Index n, Eigen::Index k, const T* a,
          Eigen::Index lda, const T* b, Eigen::Index ldb, bool accumulate, T* c, Eigen::Index ldc) {
  if (m == 0 || n == 0) return;
  const StridedMap<T> A(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  const StridedMap<T> B(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>, 0, Eigen::OuterStride<> > C(
      c, m, n, Eigen::OuterStride<>(ldc));
  // Eigen picks its GEMM kernel from the expression's types: four cases, written out.
  if (!accumulate) C.setZero();
  if (!ta && !tb) C.noalias() += A * B;
  if (!ta && tb) C.noalias() += A * B.transpose();
  if (ta && !tb) C.noalias() += A.transpose() * B;
  if (ta && tb) C.noalias() += A.transpose() * B.transpose();
}

template void gemm<float>(bool, bool, Eigen::Index, Eigen::Index, Eigen::Index, const float*,
                          Eigen::Index, const float*, Eigen::Index, bool, float*, Eigen::Index);
template void gemm<double>(bool, bool, Eigen::Index, Eigen::Index, Eigen::Index, const double*,
                           Eigen::Index, const double*, Eigen::Index, bool, double*, Eigen::Index);

}  // namespace ringdp::nn::detail

namespace ringdp::nn {

std::string gemm_library() {
  return fmt::format("Eigen {}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
                     EIGEN_MINOR_VERSION);
}

}  // namespace ringdp::nn

#endif
