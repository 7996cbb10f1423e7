#pragma once
/// \file
/// How a width is dealt out to the ranks of a tensor group (or anything split in parts).

#include <cstddef>

namespace ringdp::parallel {

/// The part [offset, offset + size) of a width held by one rank.
struct Slice {
  std::size_t offset = 0;
  std::size_t size = 0;
  /// One past the last element.
  [[nodiscard]] std::size_t end() const noexcept { return offset + size; }
  friend bool operator==(const Slice&, const Slice&) = default;
};

/// Part `index` of `width` split into `parts` consecutive slices whose sizes differ by at
/// most one, the larger ones first: 10 in 4 parts is 3, 3, 2, 2. The parts tile
/// [0, width) in index order. Needs parts >= 1 and 0 <= index < parts (InvalidArgument
/// otherwise). Local, no MPI.
[[nodiscard]] Slice split_evenly(std::size_t width, int parts, int index);

}  // namespace ringdp::parallel
