#pragma once
/// \file
/// Test hooks of the collectives: shrink limits so that small tests walk the paths that
/// large messages take. Not part of the stable API; set the same value on every rank.

#include <cstddef>

namespace ringdp::detail {

/// Largest element count handed to one MPI call (default INT_MAX). Messages with more
/// elements are split into pieces of at most this many. Tests lower it to walk the
/// splitting path without allocating 2^31 elements. 0 restores the default.
void set_max_mpi_count(std::size_t count) noexcept;
[[nodiscard]] std::size_t max_mpi_count() noexcept;

}  // namespace ringdp::detail
