#pragma once
/// \file
/// The conversion of stored uint8 samples to the floats a model sees.

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringdp::data {

/// out[i] = float(in[i]) / 255.0f for every i: uint8 values scaled to [0, 1], the values
/// ShardedLoader delivers for uint8 datasets (an IEEE division, so the bits are those of the
/// plain expression on any platform). Throws InvalidArgument when `out` is smaller than
/// `in`. Local, thread-safe (no shared state); about 0.2-0.3 ns per value on a current x86
/// core when `out` is in cache (the loop is vectorised).
void scale_to_unit(std::span<const std::uint8_t> in, std::span<float> out);

}  // namespace ringdp::data
