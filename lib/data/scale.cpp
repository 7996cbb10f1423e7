#include "ringdp/data/scale.hpp"

#include <fmt/format.h>

#include "data/scale_kernel.hpp"
#include "ringdp/error.hpp"

namespace ringdp::data {

void scale_to_unit(std::span<const std::uint8_t> in, std::span<float> out) {
  if (out.size() < in.size()) {
    throw InvalidArgument(
        fmt::format("scale_to_unit: {} outputs for {} inputs", out.size(), in.size()));
  }
  detail::scale_bytes(in.data(), out.data(), in.size());
}

}  // namespace ringdp::data
