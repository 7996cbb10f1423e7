#pragma once
// Turning an exception thrown inside ringdp into the MPI error code MPI_Allreduce returns.

namespace ringdp::interpose {

/// The MPI error code for the exception being handled; call only inside a catch block.
/// MpiError gives back MPI's own code. Other errors get an error code of the matching MPI
/// error class (MPI_ERR_ARG for InvalidArgument, MPI_ERR_NO_MEM for std::bad_alloc,
/// MPI_ERR_OTHER otherwise) whose MPI_Error_string is the exception's message, so that
/// MPI's error handlers (MPI_ERRORS_ARE_FATAL prints it) and MPI_Error_string show
/// ringdp's explanation. Never throws. Thread-safe.
[[nodiscard]] int current_exception_code() noexcept;

}  // namespace ringdp::interpose
