#pragma once
// Shared helpers of the trainer tests: a small learnable data set and comparisons.

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace ringdp::test {

/// N samples of D features in [-1, 1) with labels from a fixed random linear teacher over
/// C classes; deterministic (the same on every rank), no MPI.
inline std::pair<Eigen::MatrixXf, std::vector<std::int32_t>> teacher_data(std::size_t n, int d,
                                                                          int c,
                                                                          std::uint64_t seed) {
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 12345;
  auto uniform = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1u << 24)) *
               2.0f -
           1.0f;
  };
  Eigen::MatrixXf teacher(c, d);
  for (Eigen::Index i = 0; i < teacher.size(); ++i) teacher.data()[i] = uniform();
  Eigen::MatrixXf x(d, static_cast<Eigen::Index>(n));
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = uniform();
  std::vector<std::int32_t> labels(n);
  for (std::size_t j = 0; j < n; ++j) {
    Eigen::Index best = 0;
    (teacher * x.col(static_cast<Eigen::Index>(j))).maxCoeff(&best);
    labels[j] = static_cast<std::int32_t>(best);
  }
  return {std::move(x), std::move(labels)};
}

/// ||a - b||_2 / ||b||_2, in double.
inline double relative_difference(std::span<const float> a, std::span<const float> b) {
  double diff = 0.0;
  double norm = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    diff += d * d;
    norm += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  if (a.size() != b.size()) return INFINITY;
  return std::sqrt(diff) / std::sqrt(norm);
}

}  // namespace ringdp::test
