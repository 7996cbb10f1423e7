#pragma once
// The data every allreduce is checked on, and the check.
//
// Each rank fills its input from a counter-based generator (SplitMix64 of seed, rank,
// size index and element index): fresh for every size, different on every rank, never
// constant. The values are chosen so that the exact result does not depend on the order
// in which an algorithm combines the ranks, which makes an exact, element-by-element
// comparison with PMPI_Allreduce valid for every type and operation:
//   - floating Sum: integers in [-k, k] with n*k <= 2^mantissa (2^24 for float, 2^53 for
//     double). Every partial sum, in any order, is an integer of magnitude <= n*k, which
//     the format represents exactly, so no operation ever rounds;
//   - floating Average: n times such integers, with n*n*k <= 2^mantissa. The sum is exact
//     and a multiple of n, so sum/n is exact too, and so is summing pre-divided values;
//   - floating Product: +-1, with one element in four +-2 or +-0.5. Every partial product
//     is a power of two with exponent in [-n, n], exact while n fits the exponent range
//     (n <= 126 for float); beyond that only +-1 is used;
//   - Min and Max: integers in a wide range (exact in every type; no rounding is involved);
//   - integer Sum and Product: arithmetic modulo 2^bits is associative and commutative, so
//     the bits are order-independent even when they wrap.
// Tolerance-based comparison is therefore unnecessary: any difference is a real error.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

#include "ringdp/types.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/mpi_types.hpp"

namespace ringdp::bench {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// The largest k for which n*k (Sum) or n*n*k (Average) stays exactly representable.
template <class T>
std::int64_t exact_integer_bound(int ranks, bool average) {
  constexpr int kDigits = std::numeric_limits<T>::digits;  // 24 for float, 53 for double
  const std::int64_t limit = std::int64_t{1} << std::min(kDigits, 62);
  std::int64_t k = limit / ranks;
  if (average) k /= ranks;
  return std::clamp<std::int64_t>(k, 1, 1000);
}

/// Fills `data` with this rank's verification input for `op` (see the file comment).
template <Reducible T>
void fill_input(std::span<T> data, ReduceOp op, int rank, int ranks, std::uint64_t seed,
                std::uint64_t size_index) {
  const std::uint64_t stream = splitmix64(
      seed ^ splitmix64(static_cast<std::uint64_t>(rank) * 0x100000001B3ULL ^ (size_index << 40)));
  // An integer uniform in [-k, k] from the top 32 bits (multiply-shift, no division).
  auto uniform = [](std::uint64_t r, std::int64_t k) {
    const auto span = static_cast<std::uint64_t>(2 * k + 1);
    return static_cast<std::int64_t>(((r >> 32) * span) >> 32) - k;
  };
  const std::size_t count = data.size();
  if constexpr (std::is_floating_point_v<T>) {
    const bool product_powers = ranks <= std::numeric_limits<T>::max_exponent - 2;
    const std::int64_t k_sum = exact_integer_bound<T>(ranks, false);
    const std::int64_t k_avg = exact_integer_bound<T>(ranks, true);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t r = splitmix64(stream + i);
      T value{};
      switch (op) {
        case ReduceOp::Sum:
          value = static_cast<T>(uniform(r, k_sum));
          break;
        case ReduceOp::Average:
          value = static_cast<T>(uniform(r, k_avg) * ranks);
          break;
        case ReduceOp::Min:
        case ReduceOp::Max:
          value = static_cast<T>(uniform(r, std::int64_t{1} << 20));
          break;
        case ReduceOp::Product: {
          const T sign = (r & 1) ? T(-1) : T(1);
          const unsigned pick = static_cast<unsigned>((r >> 1) & 7);
          const T magnitude = !product_powers ? T(1) : pick == 0 ? T(2) : pick == 1 ? T(0.5) : T(1);
          value = sign * magnitude;
          break;
        }
      }
      data[i] = value;
    }
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t r = splitmix64(stream + i);
      std::int64_t value = 0;
      switch (op) {
        case ReduceOp::Sum:
        case ReduceOp::Average:
          value = uniform(r, std::int64_t{1} << 20);
          break;
        case ReduceOp::Min:
        case ReduceOp::Max:
          value = uniform(r, std::int64_t{1} << 30);
          break;
        case ReduceOp::Product:
          value = uniform(r, 3);
          if (value == 0) value = 1;
          break;
      }
      data[i] = static_cast<T>(value);
    }
  }
}

/// The reference: `reference` = PMPI_Allreduce of every rank's `input` (for Average, the
/// sum divided by the rank count, the definition of the average). PMPI_ so that an
/// interposed MPI_Allreduce can never stand in for the reference. Collective.
template <Reducible T>
void reference_allreduce(MPI_Comm comm, std::span<const T> input, std::span<T> reference,
                         ReduceOp op) {
  constexpr std::size_t kPiece = std::size_t{1} << 30;  // keep every MPI count an int
  for (std::size_t offset = 0; offset < input.size(); offset += kPiece) {
    const int piece = static_cast<int>(std::min(kPiece, input.size() - offset));
    RINGDP_MPI_CHECK(PMPI_Allreduce(input.data() + offset, reference.data() + offset, piece,
                                    mpi_datatype<T>(), mpi_op(op), comm));
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (op == ReduceOp::Average) {
      int ranks = 1;
      RINGDP_MPI_CHECK(MPI_Comm_size(comm, &ranks));
      for (T& value : reference) value = value / static_cast<T>(ranks);
    }
  }
}

/// Number of elements of `result` that differ from `reference` (== comparison: the data
/// above make exact agreement the correct expectation).
template <Reducible T>
std::uint64_t count_differences(std::span<const T> result, std::span<const T> reference) {
  std::uint64_t wrong = 0;
  for (std::size_t i = 0; i < result.size(); ++i) wrong += !(result[i] == reference[i]);
  return wrong;
}

}  // namespace ringdp::bench
