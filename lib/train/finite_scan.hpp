#pragma once
// Scans for NaN and Inf in float buffers, cheap enough to run on every averaged gradient.
// Private to the library.

#include <cstddef>
#include <span>

namespace ringdp::train::detail {

/// True when no element of `values` is NaN or +-Inf. Branch-free over the bit patterns, so
/// the compiler vectorises it: a 2 MB gradient arena takes a few tens of microseconds.
/// Local, thread-safe.
[[nodiscard]] bool all_finite(std::span<const float> values) noexcept;

/// Number of elements of `values` that are NaN or +-Inf (for the message, off the fast path).
[[nodiscard]] std::size_t count_nonfinite(std::span<const float> values) noexcept;

}  // namespace ringdp::train::detail
