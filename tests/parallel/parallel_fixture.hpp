#pragma once
// Shared helpers of the model-parallel tests: deterministic random matrices, the
// relative error of a split result against the unsplit one, and tensor groups of every
// size a run's rank count allows.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/types.hpp"

namespace ringdp::test {

/// Uniform in [-1, 1], at least `gap` away from 0 (so finite differences on ReLU inputs
/// never straddle the kink); the same on every rank for the same seed.
inline nn::Matrix<double> random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed,
                                        double gap = 0.0) {
  std::mt19937_64 rng(seed);
  nn::Matrix<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * 2.0 - 1.0;
    if (std::abs(u) < gap) u = u < 0 ? -gap : gap;
    m.data()[i] = u;
  }
  return m;
}

/// max |a - b| / max |b| (0 when b is all zero and a equals it): the bound the layer
/// equivalence tests hold split results to.
inline double relative_error(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0.0;
  double scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return scale == 0.0 ? diff : diff / scale;
}

inline double relative_error(const nn::Matrix<double>& a, const nn::Matrix<double>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return INFINITY;
  return relative_error(std::span<const double>(a.data(), static_cast<std::size_t>(a.size())),
                        std::span<const double>(b.data(), static_cast<std::size_t>(b.size())));
}

/// "9-12-5" for {9, 12, 5}: the model spec of an MLP's widths.
inline std::string spec_of(const std::vector<std::size_t>& widths) {
  return fmt::format("{}", fmt::join(widths, "-"));
}

/// Collective over `world`: consecutive groups of `size` ranks (the last one smaller when
/// `size` does not divide the rank count), so that a run at 4 ranks checks tensor groups
/// of 2 (twice), of 3 (and one of 1) and of 4.
inline Communicator consecutive_group(const Communicator& world, int size) {
  return world.split(world.rank() / size, world.rank());
}

}  // namespace ringdp::test
