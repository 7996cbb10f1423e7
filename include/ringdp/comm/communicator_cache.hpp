#pragma once
/// \file
/// ringdp's own duplicate of a caller's communicator, cached on that communicator: for
/// entry points that receive a bare MPI_Comm on every call (the C API's
/// ringdp_allreduce_comm, the Fortran module, the drop-in libringdp_mpi.so, the Python
/// package).

#include <mpi.h>

#include <cstddef>

#include "ringdp/comm/communicator.hpp"

namespace ringdp {

/// ringdp's Communicator for the intracommunicator `user`, cached on `user` as an MPI
/// attribute. The first call on a communicator creates it (collective over `user`: every
/// rank makes that first call together, as with any collective on `user`); later calls are
/// a local attribute lookup.
///
/// Lifetime: MPI_Comm_free(user) frees it (the attribute's delete callback). Those still
/// cached at MPI_Finalize are freed at its very start, while MPI is fully alive: an
/// attribute on MPI_COMM_SELF, whose delete callbacks MPI runs before anything else in
/// MPI_Finalize (MPI-4.0, 11.2.5), deletes them in the order they were created. A
/// duplicate of `user` (MPI_Comm_dup) does not inherit the cached one: it gets its own at
/// its first call, because two communicators sharing one duplicate could have their
/// messages interleave.
///
/// Thread-safe for different communicators. Throws MpiError on an MPI failure, and what
/// Communicator's constructor throws (InvalidArgument for a bad RINGDP_* setting).
[[nodiscard]] const Communicator& cached_communicator(MPI_Comm user);

/// Number of communicators that carry a cached duplicate now (for tests: it drops when a
/// communicator is freed, and is 0 once MPI_Finalize has begun). Local.
[[nodiscard]] std::size_t cached_communicator_count() noexcept;

}  // namespace ringdp
