#pragma once
// MPI handles for ringdp's element types and operations, and helpers that split a
// message into pieces of at most max_mpi_count() elements (MPI counts are int).

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ringdp/collectives/types.hpp"
#include "ringdp/detail/collectives_testing.hpp"

namespace ringdp::detail {

template <Reducible T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
  if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
}

/// The MPI operation for `op` (Average maps to MPI_SUM; the caller divides).
MPI_Op mpi_op(ReduceOp op);

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
