#pragma once
// Shared helpers of the collectives tests: random inputs, the MPI reference, and the
// comparison with its documented rounding bound.

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/mpi_types.hpp"
#include "ringdp/types.hpp"

namespace ringdp::test {

/// Fresh random input, different on every rank and for every seed. Ranges keep results
/// meaningful: Product factors near 1 (floats) or in [-3, 3] (integers) so that products
/// over 5 ranks neither overflow nor underflow; integer sums far from overflow.
template <class T>
std::vector<T> random_input(std::size_t count, ReduceOp op, std::uint64_t seed) {
  std::mt19937_64 rng(seed * 1000003u + static_cast<std::uint64_t>(world_rank()) * 7919u + 17u);
  std::vector<T> x(count);
  if constexpr (std::is_floating_point_v<T>) {
    std::uniform_real_distribution<T> any(T(-1), T(1));
    std::uniform_real_distribution<T> factor(T(0.5), T(2));
    for (auto& v : x) v = op == ReduceOp::Product ? factor(rng) : any(rng);
  } else {
    std::uniform_int_distribution<T> small(-3, 3);
    std::uniform_int_distribution<T> medium(-1000000, 1000000);
    std::uniform_int_distribution<T> full(std::numeric_limits<T>::min(),
                                          std::numeric_limits<T>::max());
    for (auto& v : x) {
      v = op == ReduceOp::Product                        ? small(rng)
          : (op == ReduceOp::Min || op == ReduceOp::Max) ? full(rng)
                                                         : medium(rng);
    }
  }
  return x;
}

/// Every operation that applies to T: Average only for floating-point types.
template <class T>
std::vector<ReduceOp> ops_for() {
  if constexpr (std::is_floating_point_v<T>) {
    return {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Min, ReduceOp::Max, ReduceOp::Product};
  } else {
    return {ReduceOp::Sum, ReduceOp::Min, ReduceOp::Max, ReduceOp::Product};
  }
}

/// The reference: PMPI_Allreduce on MPI_COMM_WORLD (Average = MPI_SUM divided by n).
template <class T>
std::vector<T> mpi_reference(const std::vector<T>& input, ReduceOp op) {
  std::vector<T> out(input.size());
  PMPI_Allreduce(input.data(), out.data(), static_cast<int>(input.size()), mpi_datatype<T>(),
                 mpi_op(op), MPI_COMM_WORLD);
  if constexpr (std::is_floating_point_v<T>) {
    if (op == ReduceOp::Average) {
      for (auto& v : out) v /= static_cast<T>(world_size());
    }
  }
  return out;
}

/// Counts elements of `got` that differ from `want` beyond the rounding bound.
///
/// Integers, Min and Max: exact. Floating Sum: both results are sums of the same n terms
/// in some order, each within gamma_{n-1} * S of the exact sum (S = sum over ranks of
/// |x|, gamma_k ~ k * eps / 2), so they differ by at most (n-1) * eps * S; the test allows
/// twice that. Average: that bound over n plus one rounding of the division. Product of
/// n factors: relative error (n-1) * eps / 2 each, so twice (n-1) * eps relative.
template <class T>
std::size_t count_wrong(std::span<const T> got, const std::vector<T>& want,
                        const std::vector<T>& input, ReduceOp op) {
  std::size_t wrong = 0;
  if constexpr (std::is_integral_v<T>) {
    for (std::size_t i = 0; i < got.size(); ++i) wrong += got[i] != want[i];
  } else {
    if (op == ReduceOp::Min || op == ReduceOp::Max) {
      for (std::size_t i = 0; i < got.size(); ++i) wrong += got[i] != want[i];
      return wrong;
    }
    const int n = world_size();
    const double eps = std::numeric_limits<T>::epsilon();
    std::vector<double> magnitude(input.size());
    std::vector<double> total(input.size());
    for (std::size_t i = 0; i < input.size(); ++i) magnitude[i] = std::abs(double(input[i]));
    PMPI_Allreduce(magnitude.data(), total.data(), static_cast<int>(input.size()), MPI_DOUBLE,
                   MPI_SUM, MPI_COMM_WORLD);
    for (std::size_t i = 0; i < got.size(); ++i) {
      double bound = 0;
      const double ref = want[i];
      if (op == ReduceOp::Sum) bound = 2.0 * (n - 1) * eps * total[i];
      if (op == ReduceOp::Average) bound = 2.0 * (n - 1) * eps * total[i] / n + eps * std::abs(ref);
      if (op == ReduceOp::Product) bound = 2.0 * (n - 1) * eps * std::abs(ref);
      if (!(std::abs(double(got[i]) - ref) <= bound)) ++wrong;
    }
  }
  return wrong;
}

}  // namespace ringdp::test
