#pragma once
// Helpers for tests that run under mpirun: collective assertions and rank queries.
//
// Assert with CHECK(all_ranks(ok)): every rank learns whether any rank failed, so all
// ranks take the same branch. Never REQUIRE on a rank-local condition: the failing rank
// would leave the test case while the others wait in the next collective.

#include <mpi.h>

#include <cstdint>
#include <span>

namespace ringdp::test {

/// Collective over `comm`: true when `ok` is true on every rank.
bool all_ranks(bool ok, MPI_Comm comm = MPI_COMM_WORLD);

int world_rank();
int world_size();

/// FNV-1a hash of the bytes, for comparing buffers across ranks.
std::uint64_t hash_bytes(const void* data, std::size_t bytes);

/// Collective: true when every rank's hash equals rank 0's.
bool same_on_all_ranks(std::uint64_t hash, MPI_Comm comm = MPI_COMM_WORLD);

}  // namespace ringdp::test
