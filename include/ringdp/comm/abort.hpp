#pragma once
/// \file
/// Ending a job that cannot be agreed: print the cause with the rank, abort every rank.

#include <mpi.h>

#include <string_view>

namespace ringdp {

/// Prints "ringdp: rank R: <message>" to stderr and calls MPI_Abort on `comm`, which ends
/// every rank of the job. For failures the other ranks cannot learn of (a local error
/// while they wait in a collective). Never returns.
[[noreturn]] void abort_job(MPI_Comm comm, std::string_view message, int exit_code = 1) noexcept;

}  // namespace ringdp
