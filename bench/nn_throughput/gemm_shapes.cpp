// The matrix products of one training step of an MLP, timed alone on one thread: what
// decides which GEMM the nn kernels use. Built twice from this file: with Eigen's own GEMM
// (ringdp-bench-gemm-eigen) and with Eigen calling the BLAS (EIGEN_USE_BLAS, linked to
// OpenBLAS: ringdp-bench-gemm-openblas). Only Eigen is used here, not ringdp, so each
// binary holds one definition of Eigen's product kernels.
//
//   ringdp-bench-gemm-eigen --spec 784-512-256-10 --batch 64 256
//
// Per product (forward W x, weight gradient dy x^T, input gradient W^T dy, for every Dense
// layer) it prints the median time over --repeats rounds of --reps calls and GFLOP/s, and
// the sum over the step. Times are CPU time of the thread (a shared machine's other load
// shows less in it than in wall time); run the two binaries one after the other, a few
// times, and compare.
#include <time.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#ifdef EIGEN_USE_BLAS
// OpenBLAS's own thread control. Without it, OpenBLAS splits every product over all the
// CPUs, and the CPU time of the calling thread (what is timed here) counts only its share:
// the 2-CPU VM then reported about half the real single-thread time.
extern "C" void openblas_set_num_threads(int threads);
#endif

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<long> parse_spec(const std::string& spec) {
  std::vector<long> widths;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const std::size_t dash = spec.find('-', pos);
    widths.push_back(std::stol(spec.substr(pos, dash - pos)));
    if (dash == std::string::npos) break;
    pos = dash + 1;
  }
  return widths;
}

struct Product {
  std::string name;
  double macs;
  std::vector<double> seconds;
};

}  // namespace

int main(int argc, char** argv) {
  std::string spec = "784-512-256-10";
  std::vector<long> batches;
  int reps = 50;
  int repeats = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--spec" && i + 1 < argc) {
      spec = argv[++i];
    } else if (a == "--batch") {
      while (i + 1 < argc && argv[i + 1][0] != '-') batches.push_back(std::atol(argv[++i]));
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--repeats" && i + 1 < argc) {
      repeats = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--spec 784-512-256-10] [--batch 64 256] [--reps 50] "
                   "[--repeats 7]\n",
                   argv[0]);
      return 2;
    }
  }
  if (batches.empty()) batches = {64, 256};
#ifdef EIGEN_USE_BLAS
  openblas_set_num_threads(1);  // as ringdp does (lib/nn/gemm.cpp)
#endif
  const std::vector<long> widths = parse_spec(spec);
#ifdef EIGEN_USE_BLAS
  const char* gemm = "Eigen with EIGEN_USE_BLAS (OpenBLAS, 1 thread)";
#else
  const char* gemm = "Eigen's own GEMM";
#endif
  std::printf("# GEMM shapes of MLP %s, one thread: %s, SIMD %s\n", spec.c_str(), gemm,
              Eigen::SimdInstructionSetsInUse());
  std::printf("# median over %d rounds of %d calls, CPU time of the thread\n", repeats, reps);
  std::printf("%6s %-26s %10s %9s\n", "batch", "product", "time_us", "GFLOP/s");
  for (const long batch : batches) {
    // Layer l maps widths[l] -> widths[l + 1]; x_l is its input (widths[l] x batch).
    std::vector<Matrix> w, x, y, dy, dw, dx;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
      w.push_back(Matrix::Random(widths[l + 1], widths[l]));
      x.push_back(Matrix::Random(widths[l], batch));
      y.emplace_back(widths[l + 1], batch);
      dy.push_back(Matrix::Random(widths[l + 1], batch));
      dw.emplace_back(widths[l + 1], widths[l]);
      dx.emplace_back(widths[l], batch);
    }
    std::vector<Product> products;
    std::vector<std::function<void()>> runs;
    for (std::size_t l = 0; l < w.size(); ++l) {
      const double macs = static_cast<double>(widths[l]) * static_cast<double>(widths[l + 1]) *
                          static_cast<double>(batch);
      const std::string dims = std::to_string(widths[l + 1]) + "x" + std::to_string(widths[l]);
      products.push_back({"fwd  W x      " + dims, macs, {}});
      runs.emplace_back([&, l] { y[l].noalias() = w[l] * x[l]; });
      products.push_back({"grad dy x^T   " + dims, macs, {}});
      runs.emplace_back([&, l] { dw[l].noalias() = dy[l] * x[l].transpose(); });
      if (l > 0) {  // the first layer computes no input gradient
        products.push_back({"grad W^T dy   " + dims, macs, {}});
        runs.emplace_back([&, l] { dx[l].noalias() = w[l].transpose() * dy[l]; });
      }
    }
    for (int round = 0; round < repeats; ++round) {
      for (std::size_t p = 0; p < runs.size(); ++p) {
        runs[p]();  // warm
        const double t0 = cpu_seconds();
        for (int r = 0; r < reps; ++r) runs[p]();
        products[p].seconds.push_back((cpu_seconds() - t0) / reps);
      }
    }
    double total = 0, total_macs = 0;
    for (const Product& p : products) {
      const double s = median(p.seconds);
      total += s;
      total_macs += p.macs;
      std::printf("%6ld %-26s %10.1f %9.1f\n", batch, p.name.c_str(), s * 1e6,
                  2 * p.macs / s * 1e-9);
    }
    std::printf("%6ld %-26s %10.1f %9.1f\n", batch, "step (sum)", total * 1e6,
                2 * total_macs / total * 1e-9);
  }
  return 0;
}
