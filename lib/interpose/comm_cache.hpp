#pragma once
// ringdp's own duplicate of each user communicator the interposer serves, cached on the
// user's communicator as an MPI attribute so that it lives exactly as long as the user's.

#include <mpi.h>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::interpose {

/// ringdp's duplicate of the intracommunicator `user`. The first call on a communicator
/// creates it (collective over `user`: the first served MPI_Allreduce, which every rank
/// makes together) and attaches it to `user` as an attribute whose delete callback frees
/// it, so MPI_Comm_free(user) frees it too. Later calls are a local attribute lookup.
/// Thread-safe for different communicators. Throws ringdp::Error (MpiError) on failure.
[[nodiscard]] const Communicator& communicator_for(MPI_Comm user);

/// Frees every duplicate still cached, by deleting the attribute from each user
/// communicator, then frees the keyval. Called from MPI_Finalize before PMPI_Finalize,
/// while MPI is fully alive, so that the duplicates of MPI_COMM_WORLD and MPI_COMM_SELF
/// (which the user never frees) and of communicators the user forgot are freed cleanly.
/// Never throws.
void release_all() noexcept;

}  // namespace ringdp::interpose
