// Parameter-server allreduce: every rank sends its buffer to rank 0, which reduces them
// in rank order and sends the result back. The baseline ring allreduce beats: rank 0's
// link carries (n-1) x N bytes in and out, so its time grows linearly with the rank
// count, while the ring's per-rank traffic stays about 2N. Never chosen by Auto.

#include <mpi.h>

#include <cstdint>

#include "algorithms.hpp"
#include "comm/requests.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::detail {
namespace {

constexpr int kPsTag = 0x5053;  // "PS"
constexpr int kServer = 0;

}  // namespace

template <Reducible T>
void allreduce_ps(const Communicator& comm, std::span<T> data, ReduceOp op) {
  const int n = comm.size();
  if (n == 1 || data.empty()) return;
  const std::size_t count = data.size();
  // Every message of the call, counted and settled if the call unwinds (requests.hpp).
  Requests flight(comm, kPsTag, mpi_datatype<T>());
  if (comm.rank() == kServer) {
    // Receiving from ranks in order 1, 2, ... (not MPI_ANY_SOURCE) fixes the order of the
    // reduction, so the result does not depend on which rank arrives first. The scratch
    // buffer belongs to the communicator and is reused across calls.
    T* incoming = reinterpret_cast<T*>(comm.scratch(count * sizeof(T)).data());
    for (int source = 1; source < n; ++source) {
      for_each_piece(count, [&](std::size_t offset, int piece) {
        flight.wait_recv(flight.irecv(incoming + offset, piece, source));
      });
      reduce_into(data.data(), incoming, count, op);
    }
    if (op == ReduceOp::Average) finish_average(data.data(), count, n);
  } else {
    for_each_piece(count, [&](std::size_t offset, int piece) {
      flight.isend(data.data() + offset, piece, kServer);
      flight.wait_all();
    });
  }
  // The server's bytes go to everyone: all ranks end bit-identical.
  for_each_piece(count, [&](std::size_t offset, int piece) {
    RINGDP_MPI_CHECK(MPI_Ibcast(data.data() + offset, piece, mpi_datatype<T>(), kServer,
                                comm.native(), flight.collective()));
    flight.wait_all();
  });
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_ps<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
