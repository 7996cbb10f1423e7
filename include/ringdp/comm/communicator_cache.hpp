#pragma once
/// \file
/// ringdp's own duplicate of a user's communicator, cached on that communicator as an MPI
/// attribute so that it lives exactly as long as the user's: for bindings and drop-ins
/// that receive a bare MPI_Comm at every call (the interposed MPI_Allreduce, the Python
/// package) and must not duplicate it each time.

#include <mpi.h>

#include <cstddef>

#include "ringdp/comm/communicator.hpp"

namespace ringdp {

/// ringdp's duplicate of the intracommunicator `user`. The first call on a communicator
/// creates it (collective over `user`, like Communicator's constructor: every rank must
/// make that first call together) and attaches it to `user` as an attribute whose delete
/// callback frees it, so MPI_Comm_free(user) frees it too; MPI_Finalize frees the ones
/// still cached (release_cached_communicators(), run from an attribute on MPI_COMM_SELF,
/// which MPI deletes first when it finalises). Later calls are a local attribute lookup.
/// A duplicate of `user` (MPI_Comm_dup) does not inherit it: it gets its own. Thread-safe
/// for different communicators. Throws ringdp::Error (MpiError) on failure.
[[nodiscard]] Communicator& cached_communicator(MPI_Comm user);

/// Frees every duplicate still cached, by deleting the attribute from each user
/// communicator, then frees the keyval; the next cached_communicator() starts afresh. Runs
/// by itself at the start of MPI_Finalize; a caller that finalises MPI its own way (the
/// interposed MPI_Finalize) may call it first. Never throws.
void release_cached_communicators() noexcept;

/// Number of user communicators that carry a cached duplicate. Local.
[[nodiscard]] std::size_t cached_communicator_count() noexcept;

}  // namespace ringdp
