// The interposed MPI_Allreduce: serve the call with ringdp when ringdp supports it, hand
// it to PMPI_Allreduce (the MPI library's own entry point) otherwise.
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
#include "comm_cache.hpp"
#include "counters.hpp"
#include "error_codes.hpp"
#include "ringdp/collectives/collectives.hpp"
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

int pass(const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
         MPI_Comm comm, std::size_t bytes) noexcept {
  count_passed(bytes);
  return PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
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
  const Communicator& comm = communicator_for(user);
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

int allreduce_entry(const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                    MPI_Comm comm) {
  const Settings& s = settings();
  if (!s.enabled || inside_served_call) {
    return pass(sendbuf, recvbuf, count, datatype, op, comm, bytes_of(count, datatype));
  }
  if (!s.error.empty()) throw InvalidArgument(s.error);

  std::optional<Served> what;
  if (count > 0 && comm != MPI_COMM_NULL && recvbuf != nullptr && recvbuf != MPI_IN_PLACE) {
    what = classify(datatype, op);
  }
  if (!what) return pass(sendbuf, recvbuf, count, datatype, op, comm, bytes_of(count, datatype));

  const std::size_t element = size_of(what->type);
  const std::size_t bytes = static_cast<std::size_t>(count) * element;
  const bool in_place = sendbuf == MPI_IN_PLACE;
  int inter = 0;
  if (bytes < s.min_bytes || !aligned(recvbuf, element) ||
      (!in_place &&
       (sendbuf == nullptr || !aligned(sendbuf, element) || overlap(sendbuf, recvbuf, bytes))) ||
      PMPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS || inter != 0) {
    return pass(sendbuf, recvbuf, count, datatype, op, comm, bytes);
  }

  inside_served_call = true;
  try {
    serve(sendbuf, recvbuf, count, *what, comm, bytes);
  } catch (...) {
    inside_served_call = false;
    throw;
  }
  inside_served_call = false;
  count_served(bytes);
  return MPI_SUCCESS;
}

}  // namespace
}  // namespace ringdp::interpose

extern "C" int MPI_Allreduce(const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype,
                             MPI_Op op, MPI_Comm comm) {
  // No exception crosses into C: an error becomes an MPI code, handed to the
  // communicator's error handler as MPI itself would (MPI_ERRORS_ARE_FATAL aborts with
  // the message, MPI_ERRORS_RETURN returns the code).
  try {
    return ringdp::interpose::allreduce_entry(sendbuf, recvbuf, count, datatype, op, comm);
  } catch (...) {
    const int code = ringdp::interpose::current_exception_code();
    PMPI_Comm_call_errhandler(comm, code);
    return code;
  }
}
