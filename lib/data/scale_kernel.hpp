#pragma once
// The uint8 -> float scaling loop, inline so that the loader's per-column copy and the
// public scale_to_unit() compile to the same vectorised code. Private to the library.

#include <cstddef>
#include <cstdint>

namespace ringdp::data::detail {

/// out[i] = float(in[i]) / 255.0f. Why a division and not a multiplication by 1/255 or a
/// 256-entry table: the multiplication rounds 126 of the 256 quotients differently (the
/// delivered rows must equal v / 255.0f bit for bit), and the table is a gather the
/// compiler cannot vectorise well (one load per value, ~0.7 ns per value here). The
/// division is exact IEEE (correctly rounded, no -ffast-math involved) and vectorises: 8
/// zero-extensions, conversions and divisions per AVX instruction, ~0.25 ns per value.
/// `__restrict`: the buffers never overlap, so the compiler needs no run-time alias check.
inline void scale_bytes(const std::uint8_t* __restrict in, float* __restrict out,
                        std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]) / 255.0f;
}

}  // namespace ringdp::data::detail
