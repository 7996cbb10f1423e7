#include "train/finite_scan.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace ringdp::train::detail {
namespace {

// IEEE-754 binary32: NaN and +-Inf are exactly the values whose 8 exponent bits are all
// ones. Masking the sign and mantissa away leaves 0x7f800000 for them and something smaller
// for every finite value, so "all finite" is "the largest masked pattern is below it".
constexpr std::uint32_t kExponentMask = 0x7f800000u;

}  // namespace

bool all_finite(std::span<const float> values) noexcept {
  // A max-reduction over unsigned integers, with no early exit: the loop has no branch and
  // no floating-point reassociation, so GCC and Clang turn it into packed integer max
  // instructions (an early exit or std::isfinite in the loop would keep it scalar). The
  // common case, all finite, has to read every element anyway.
  std::uint32_t largest = 0;
  for (const float v : values) {
    largest = std::max(largest, std::bit_cast<std::uint32_t>(v) & kExponentMask);
  }
  return largest != kExponentMask;
}

std::size_t count_nonfinite(std::span<const float> values) noexcept {
  return static_cast<std::size_t>(
      std::count_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); }));
}

}  // namespace ringdp::train::detail
