#pragma once
/// \file
/// The thin MPI layer: every MPI call of the library goes through RINGDP_MPI_CHECK, which
/// turns an error code into ringdp::MpiError (naming the routine, MPI's text for the code,
/// and the rank). ringdp's own communicators use MPI_ERRORS_RETURN, so codes do come back
/// instead of MPI aborting the job. Applications may use it for their own MPI calls.

#include <mpi.h>

#include <cstddef>

namespace ringdp {

/// Throws MpiError{routine, code} when code != MPI_SUCCESS. `call` is the call's text;
/// the routine name is taken from it up to the first '('.
void check_mpi(int code, const char* call);

/// Converts an element count to the int MPI takes, throwing InvalidArgument when it does
/// not fit (callers split larger messages into pieces instead).
[[nodiscard]] int checked_mpi_count(std::size_t count);

}  // namespace ringdp

/// Checks the return code of an MPI call: RINGDP_MPI_CHECK(MPI_Barrier(comm)).
#define RINGDP_MPI_CHECK(call) ::ringdp::check_mpi((call), #call)
