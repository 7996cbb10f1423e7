// Recursive-doubling allreduce: log2(p) rounds in which rank pairs at distance 1, 2, 4, ...
// swap their whole buffers and combine them. Latency-optimal (log2 p messages instead of
// the ring's 2(n-1)), so it wins for small messages; for large ones it moves log2(p) x N
// bytes per rank against the ring's 2N(n-1)/n, and loses.

#include <mpi.h>

#include <cstdint>

#include "algorithms.hpp"
#include "comm/requests.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::detail {
namespace {

constexpr int kRdTag = 0x5244;  // "RD"

// Transfers wait through the library's wait, which the stall inspector watches. The one
// exception is the send of a small message: it goes out with a blocking MPI_Send, which
// MPI completes at once by copying the message out (eager protocol) without waiting for
// the receiver, so it never waits for a late rank; an MPI_Isend there cost 70-100 ns, 10%
// of a small recursive-doubling allreduce (measured with ringdp-bench at 2 ranks). Every
// MPI sends messages this small eagerly (Open MPI: up to 4 KiB over shared memory, 64 KiB
// over TCP).
constexpr std::size_t kBlockingSendBytes = 1024;

template <class T>
void send_piece(Requests& flight, const T* data, int piece, int dest) {
  if (static_cast<std::size_t>(piece) * sizeof(T) <= kBlockingSendBytes) {
    flight.send(data, piece, dest);
    return;
  }
  flight.isend(data, piece, dest);
  flight.wait_all();
}

template <class T>
void send_all(Requests& flight, const T* data, std::size_t count, int dest) {
  for_each_piece(count, [&](std::size_t offset, int piece) {
    send_piece(flight, data + offset, piece, dest);
  });
}

template <class T>
void recv_all(Requests& flight, T* data, std::size_t count, int source) {
  for_each_piece(count, [&](std::size_t offset, int piece) {
    flight.wait_recv(flight.irecv(data + offset, piece, source));
  });
}

// MPI_Sendrecv, watched: the receive first, so that the partner's message can land
// straight in place.
template <class T>
void exchange(Requests& flight, const T* out, T* in, int piece, int partner) {
  const std::size_t received = flight.irecv(in, piece, partner);
  if (static_cast<std::size_t>(piece) * sizeof(T) <= kBlockingSendBytes) {
    flight.send(out, piece, partner);
    flight.wait_recv(received);
    return;
  }
  flight.isend(out, piece, partner);
  flight.wait_all();
}

}  // namespace

template <Reducible T>
void allreduce_recursive_doubling(const Communicator& comm, std::span<T> data, ReduceOp op) {
  const int n = comm.size();
  const int rank = comm.rank();
  const std::size_t count = data.size();
  if (n == 1 || count == 0) return;
  T* incoming = reinterpret_cast<T*>(comm.scratch(count * sizeof(T)).data());
  // Every message of the call, counted and settled if the call unwinds (requests.hpp).
  Requests flight(comm, kRdTag, mpi_datatype<T>());

  // Rank counts that are not a power of two: with p the largest power of two <= n and
  // extra = n - p, the first 2*extra ranks pair up (0,1), (2,3), ...; each even rank
  // folds its buffer into its odd neighbour and sits out the doubling, which then runs
  // over exactly p ranks. At the end the odd ranks hand the result back.
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const int extra = n - p;
  int virtual_rank = -1;  // rank among the p ranks taking part in the doubling
  if (rank < 2 * extra) {
    if (rank % 2 == 0) {
      send_all(flight, data.data(), count, rank + 1);
    } else {
      recv_all(flight, incoming, count, rank - 1);
      // The lower rank's operand first, as in every combine below.
      reduce_into(data.data(), incoming, count, op, /*dst_first=*/false);
      virtual_rank = rank / 2;
    }
  } else {
    virtual_rank = rank - extra;
  }

  if (virtual_rank >= 0) {
    auto real_rank = [extra](int v) { return v < extra ? 2 * v + 1 : v + extra; };
    for (int distance = 1; distance < p; distance *= 2) {
      const int partner_virtual = virtual_rank ^ distance;
      const int partner = real_rank(partner_virtual);
      for_each_piece(count, [&](std::size_t offset, int piece) {
        exchange(flight, data.data() + offset, incoming + offset, piece, partner);
      });
      // Both partners evaluate the same expression, lower virtual rank's operand first,
      // on the same two operands; by induction every rank ends with the same bits.
      reduce_into(data.data(), incoming, count, op, /*dst_first=*/virtual_rank < partner_virtual);
    }
  }

  if (rank < 2 * extra) {
    if (rank % 2 == 1) {
      send_all(flight, data.data(), count, rank - 1);
    } else {
      recv_all(flight, data.data(), count, rank + 1);
    }
  }
  if (op == ReduceOp::Average) finish_average(data.data(), count, n);
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_recursive_doubling<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
