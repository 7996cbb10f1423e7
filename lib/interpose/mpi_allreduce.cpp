// The interposed MPI_Allreduce: serve the call with ringdp when ringdp supports it, hand
// it to PMPI_Allreduce (the MPI library's own entry point) otherwise. The Fortran bindings
// (fortran_bindings.cpp) take the same decision through serve_if_supported().
//
// The decision, cheapest test first, so that a call MPI keeps costs a few comparisons:
//   serving on (RINGDP_INTERPOSE) and not re-entered from below this call;
//   count > 0, a communicator, a receive buffer that is not MPI_IN_PLACE;
//   a predefined SUM/PROD/MIN/MAX on a predefined 4- or 8-byte number (classify());
//   at least RINGDP_INTERPOSE_MIN_BYTES bytes per rank;
//   buffers aligned for the element type and, when separate, not overlapping;
//   an intracommunicator.
// Everything else (user-defined and other ops, derived types, intercommunicators, small
// or erroneous calls) goes to MPI untouched, so MPI gives its answer or its error.

#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "classify.hpp"
#include "counters.hpp"
#include "entry.hpp"
#include "error_codes.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/communicator_cache.hpp"
#include "ringdp/error.hpp"
#include "settings.hpp"

namespace ringdp::interpose {
namespace {

// True while this thread is inside a served call. ringdp calls PMPI_Allreduce itself, so
// this should never trigger; it is the safety net that turns a stray MPI_Allreduce below
// us (in ringdp, in MPI, in a callback) into a pass-through instead of endless recursion.
// A pass-through counted there is visible in the counts the tests check.
thread_local bool inside_served_call = false;

std::size_t bytes_of(int count, MPI_Datatype datatype) noexcept {
  // Only for the counts: a null type would make MPI_Type_size raise an error of its own
  // (fatal by default) before MPI_Allreduce could report it on the right communicator.
  if (count <= 0 || datatype == MPI_DATATYPE_NULL) return 0;
  int size = 0;
  if (PMPI_Type_size(datatype, &size) != MPI_SUCCESS || size < 0) return 0;
  return static_cast<std::size_t>(count) * static_cast<std::size_t>(size);
}

bool aligned(const void* pointer, std::size_t alignment) noexcept {
  return reinterpret_cast<std::uintptr_t>(pointer) % alignment == 0;
}

bool overlap(const void* a, const void* b, std::size_t bytes) noexcept {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return x < y + bytes && y < x + bytes;
}

template <class T>
void run(const Communicator& comm, void* data, int count, ReduceOp op) {
  // The algorithm is Auto: RINGDP_ALGORITHM when set, else ringdp's measured choice.
  allreduce(comm, std::span<T>(static_cast<T*>(data), static_cast<std::size_t>(count)), op);
}

void serve(const void* sendbuf, void* recvbuf, int count, Served what, MPI_Comm user,
           std::size_t bytes) {
  const Communicator& comm = cached_communicator(user);
  // ringdp reduces in place. The receive buffer does not overlap the send buffer (checked
  // by the caller), so copying first leaves the send buffer untouched, as MPI promises.
  if (sendbuf != MPI_IN_PLACE) std::memcpy(recvbuf, sendbuf, bytes);
  switch (what.type) {
    case DataType::Float32:
      run<float>(comm, recvbuf, count, what.op);
      return;
    case DataType::Float64:
      run<double>(comm, recvbuf, count, what.op);
      return;
    case DataType::Int32:
      run<std::int32_t>(comm, recvbuf, count, what.op);
      return;
    case DataType::Int64:
      run<std::int64_t>(comm, recvbuf, count, what.op);
      return;
  }
  throw InvalidArgument("unknown element type");
}

// The decision (see the top of this file); false when the call goes to MPI.
bool should_serve(const AllreduceCall& c, const Settings& s, std::optional<Served>& what,
                  std::size_t& bytes) {
  if (!s.enabled || inside_served_call) return false;
  if (!s.error.empty()) throw InvalidArgument(s.error);
  if (c.count <= 0 || c.comm == MPI_COMM_NULL || c.recvbuf == nullptr ||
      c.recvbuf == MPI_IN_PLACE) {
    return false;
  }
  what = classify(c.datatype, c.op);
  if (!what) return false;
  const std::size_t element = size_of(what->type);
  bytes = static_cast<std::size_t>(c.count) * element;
  const bool in_place = c.sendbuf == MPI_IN_PLACE;
  int inter = 0;
  return bytes >= s.min_bytes && aligned(c.recvbuf, element) &&
         (in_place || (c.sendbuf != nullptr && aligned(c.sendbuf, element) &&
                       !overlap(c.sendbuf, c.recvbuf, bytes))) &&
         PMPI_Comm_test_inter(c.comm, &inter) == MPI_SUCCESS && inter == 0;
}

}  // namespace

void count_passed_call(int count, MPI_Datatype datatype) noexcept {
  count_passed(bytes_of(count, datatype));
}

bool serve_if_supported(const AllreduceCall& c) {
  std::optional<Served> what;
  std::size_t bytes = 0;
  if (!should_serve(c, settings(), what, bytes)) {
    count_passed(what ? bytes : bytes_of(c.count, c.datatype));
    return false;
  }
  inside_served_call = true;
  try {
    serve(c.sendbuf, c.recvbuf, c.count, *what, c.comm, bytes);
  } catch (...) {
    inside_served_call = false;
    throw;
  }
  inside_served_call = false;
  count_served(bytes);
  return true;
}

}  // namespace ringdp::interpose

extern "C" int MPI_Allreduce(const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype,
                             MPI_Op op, MPI_Comm comm) {
  // No exception crosses into C: an error becomes an MPI code, handed to the
  // communicator's error handler as MPI itself would (MPI_ERRORS_ARE_FATAL aborts with
  // the message, MPI_ERRORS_RETURN returns the code).
  try {
    if (ringdp::interpose::serve_if_supported({sendbuf, recvbuf, count, datatype, op, comm})) {
      return MPI_SUCCESS;
    }
    return PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
  } catch (...) {
    const int code = ringdp::interpose::current_exception_code();
    PMPI_Comm_call_errhandler(comm, code);
    return code;
  }
}
