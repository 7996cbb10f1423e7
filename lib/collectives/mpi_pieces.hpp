#pragma once
// Splitting a message into pieces of at most max_mpi_count() elements (MPI counts are int).

#include <cstddef>

#include "ringdp/comm/mpi_types.hpp"
#include "ringdp/testing.hpp"

namespace ringdp::detail {

using testing::max_mpi_count;

/// Calls fn(offset, piece) for consecutive pieces of at most max_mpi_count() elements
/// covering [0, count); piece is an int ready for MPI. Nothing when count == 0.
template <class Fn>
void for_each_piece(std::size_t count, Fn&& fn) {
  const std::size_t limit = max_mpi_count();
  for (std::size_t offset = 0; offset < count; offset += limit) {
    const std::size_t piece = count - offset < limit ? count - offset : limit;
    fn(offset, static_cast<int>(piece));
  }
}

}  // namespace ringdp::detail
