#pragma once
// How many MPI_Allreduce calls (and bytes per rank) were served by ringdp and how many
// were passed through to MPI, for RINGDP_INTERPOSE_VERBOSE and RINGDP_INTERPOSE_STATS.

#include <cstddef>
#include <cstdint>

namespace ringdp::interpose {

/// Counts one call served by ringdp / passed to MPI, of `bytes` bytes on this rank.
/// Thread-safe (relaxed atomics: the totals are read only at MPI_Finalize).
void count_served(std::size_t bytes) noexcept;
void count_passed(std::size_t bytes) noexcept;

/// Collective over MPI_COMM_WORLD, called from MPI_Finalize before PMPI_Finalize: when
/// any rank has RINGDP_INTERPOSE_VERBOSE=1 or RINGDP_INTERPOSE_STATS set, gathers every
/// rank's counts to rank 0, which prints the totals (verbose) and writes one line per rank
/// to the stats file (written to a temporary name, then renamed). Prints nothing
/// otherwise. Never throws; a failure is reported on stderr.
void report_counts() noexcept;

}  // namespace ringdp::interpose
