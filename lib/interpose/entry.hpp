#pragma once
// What the interposer's C entry points (mpi_allreduce.cpp, mpi_finalize.cpp) and its Fortran
// ones (fortran_bindings.cpp) share: the decision to serve an MPI_Allreduce call, the
// serving, and MPI_Finalize's work.

#include <mpi.h>

namespace ringdp::interpose {

/// One MPI_Allreduce call in C terms: a Fortran caller's handles, MPI_IN_PLACE and
/// MPI_BOTTOM are converted first.
struct AllreduceCall {
  const void* sendbuf;
  void* recvbuf;
  int count;
  MPI_Datatype datatype;
  MPI_Op op;
  MPI_Comm comm;
};

/// When the interposer's rules allow it (mpi_allreduce.cpp lists them), serves `call` with
/// ringdp, counts it as served and returns true. Otherwise counts it as passed and returns
/// false: the caller then hands it to MPI untouched, through MPI's entry point for the
/// caller's language. Throws ringdp::Error when a served call fails, and InvalidArgument
/// for a RINGDP_INTERPOSE* variable that cannot be parsed.
[[nodiscard]] bool serve_if_supported(const AllreduceCall& call);

/// Counts a call passed to MPI without a decision (a Fortran call whose arguments MPI must
/// judge itself); `datatype` MPI_DATATYPE_NULL when it cannot be sized. Never throws.
void count_passed_call(int count, MPI_Datatype datatype) noexcept;

/// MPI_Finalize: reports the counts when asked (collective over MPI_COMM_WORLD), then
/// PMPI_Finalize, whose result it returns. ringdp's cached duplicates are freed at the start
/// of PMPI_Finalize (ringdp/comm/communicator_cache.hpp). Never throws.
int finalize() noexcept;

}  // namespace ringdp::interpose
