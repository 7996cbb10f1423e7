#include "ringdp/parallel/slice.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ringdp/error.hpp"

namespace ringdp::parallel {

Slice split_evenly(std::size_t width, int parts, int index) {
  if (parts < 1 || index < 0 || index >= parts) {
    throw InvalidArgument(
        fmt::format("split_evenly: part {} of {} parts does not exist", index, parts));
  }
  const auto n = static_cast<std::size_t>(parts);
  const auto i = static_cast<std::size_t>(index);
  // The first width % parts parts hold one element more than the others.
  const std::size_t base = width / n;
  const std::size_t larger = width % n;
  return {i * base + std::min(i, larger), base + (i < larger ? 1 : 0)};
}

}  // namespace ringdp::parallel
