#pragma once
/// \file
/// Test hooks: limits shrunk so that small tests walk the paths large messages take, and
/// state a test can inspect. Not part of the stable API; set the same value on every rank.

#include <cstddef>
#include <cstdint>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::testing {

/// Largest element count handed to one MPI call (default INT_MAX). Messages with more
/// elements are split into pieces of at most this many. Tests lower it to walk the
/// splitting path without allocating 2^31 elements. 0 restores the default. Thread-safe.
void set_max_mpi_count(std::size_t count) noexcept;
[[nodiscard]] std::size_t max_mpi_count() noexcept;

/// Makes the `nth` wait (1-based, counted from this call) of a ringdp collective in this
/// process throw MpiError before it polls, once, as if MPI had failed there: the collective
/// then unwinds with its requests in flight, which it must settle. Every wait of a
/// collective counts (each receive and each group of sends of the ring, each exchange of
/// recursive doubling...). 0 turns the hook off. Thread-safe.
void fail_nth_wait(std::uint64_t nth) noexcept;

/// Largest message (bytes) the shm allreduce reduces on every rank in one wait instead of in
/// owned slices (default: the measured value in allreduce_shm.cpp). Tests lower it to walk
/// the slice path with small counts; benchmarks move it to find the crossover. 0 restores
/// the default. Thread-safe.
void set_shm_small_bytes(std::size_t bytes) noexcept;
[[nodiscard]] std::size_t shm_small_bytes() noexcept;

/// Stall reports and answers of `comm` still in flight on this rank (a stall that
/// resolved by itself leaves none). Local.
[[nodiscard]] std::size_t stall_sends_in_flight(const Communicator& comm) noexcept;

}  // namespace ringdp::testing
