#pragma once
// The slice of a width a tensor-parallel layer holds, checked to be non-empty.

#include <fmt/format.h>

#include <cstddef>

#include "ringdp/error.hpp"
#include "ringdp/parallel/slice.hpp"

namespace ringdp::parallel::detail {

/// The slice of `width` held by rank `rank` of `ranks`; InvalidArgument when a size is
/// zero or the width is narrower than the ranks.
inline Slice checked_slice(std::size_t width, int ranks, int rank, const char* layer,
                           const char* what, std::size_t inputs, std::size_t outputs) {
  if (inputs == 0 || outputs == 0) {
    throw InvalidArgument(
        fmt::format("{} layer needs positive sizes, got {} -> {}", layer, inputs, outputs));
  }
  if (width < static_cast<std::size_t>(ranks)) {
    throw InvalidArgument(fmt::format(
        "{} {} -> {} cannot be split over {} tensor ranks: its {} {} are fewer than the ranks",
        layer, inputs, outputs, ranks, width, what));
  }
  return split_evenly(width, ranks, rank);
}

}  // namespace ringdp::parallel::detail
