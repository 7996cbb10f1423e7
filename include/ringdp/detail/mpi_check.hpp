#pragma once
/// \file
/// The thin MPI layer: every MPI call of the library goes through RINGDP_MPI_CHECK, which
/// turns an error code into ringdp::MpiError. The library's communicators use
/// MPI_ERRORS_RETURN, so codes do come back instead of MPI aborting the job.

#include <mpi.h>

#include <cstddef>
#include <limits>

namespace ringdp::detail {

/// Throws MpiError{routine, code} when code != MPI_SUCCESS. `call` is the call's text;
/// the routine name is taken from it up to the first '('.
void check_mpi(int code, const char* call);

/// Converts an element count to the int MPI takes, throwing InvalidArgument when it does
/// not fit (callers split larger messages into pieces instead).
int checked_mpi_count(std::size_t count);

}  // namespace ringdp::detail

#define RINGDP_MPI_CHECK(call) ::ringdp::detail::check_mpi((call), #call)
