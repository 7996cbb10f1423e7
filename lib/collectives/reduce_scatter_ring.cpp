// Ring reduce-scatter: the first half of the ring allreduce, ending with block r on rank r
// (MPI_Reduce_scatter_block's layout) instead of block r+1.
//
// In step s (0 <= s < n-1) rank r sends its running sum of block (r - s - 1) mod n to the
// right and receives the left neighbour's running sum of block (r - s - 2) mod n, adds its
// own input of that block, and so has what it sends in step s+1. Step 0 sends the input
// itself; the last step adds into my_block, which then holds block r summed over all ranks.
// Each block moves in segments (ring_segment_bytes), all posted at once per step and added
// as they arrive, so the transfer of later segments overlaps the addition of earlier ones.
// Per rank this moves (n-1)/n x N bytes each way, like the ring allreduce's first half.
// The input is const: running sums live in two block-sized buffers of the communicator's
// scratch (one being sent while the next is summed), plus one for the received block.

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "algorithms.hpp"
#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::detail {
namespace {

constexpr int kReduceScatterTag = 0x5253;  // "RS"

}  // namespace

template <Reducible T>
void reduce_scatter_ring(const Communicator& comm, std::span<const T> data, std::span<T> my_block,
                         ReduceOp op) {
  const int n = comm.size();
  const int rank = comm.rank();
  const std::size_t b = my_block.size();
  auto block = [&](int k) { return data.data() + static_cast<std::size_t>((k % n + n) % n) * b; };
  if (n == 1 || b == 0) {
    if (b > 0 && my_block.data() != data.data()) {
      std::memmove(my_block.data(), data.data(), b * sizeof(T));
    }
    return;
  }
  const std::size_t segment =
      std::max<std::size_t>(1, std::min(ring_segment_bytes(n) / sizeof(T), max_mpi_count()));
  T* const scratch = reinterpret_cast<T*>(comm.scratch(3 * b * sizeof(T)).data());
  T* const sums[2] = {scratch, scratch + b};
  T* const incoming = scratch + 2 * b;
  const int right = (rank + 1) % n;
  const int left = (rank + n - 1) % n;
  const MPI_Datatype type = mpi_datatype<T>();
  // Declared after the scratch and the caller's buffers it sends from and receives into, so
  // that on unwinding it settles before they go (requests.hpp).
  Requests flight(comm, kReduceScatterTag, type);
  const T* outgoing = block(rank - 1);  // step 0 sends the input itself
  // my_block may be this rank's own block of `data` (in place): the last step then sums
  // into scratch, as its own term would be overwritten before it is added.
  const bool in_place =
      my_block.data() < data.data() + data.size() && data.data() < my_block.data() + b;
  for (int step = 0; step < n - 1; ++step) {
    const bool last = step == n - 2;
    T* const target = last && !in_place ? my_block.data() : sums[step % 2];
    const T* const own = block(rank - step - 2);
    const std::size_t first = flight.recvs_posted();  // receive k is first + k
    for (std::size_t offset = 0; offset < b; offset += segment) {
      const int piece = static_cast<int>(std::min(segment, b - offset));
      flight.irecv(incoming + offset, piece, left);
      flight.isend(outgoing + offset, piece, right);
    }
    for (std::size_t k = 0, offset = 0; offset < b; ++k, offset += segment) {
      const std::size_t piece = std::min(segment, b - offset);
      flight.wait_recv(first + k);
      // The running sum received, then this rank's own term: own + received would differ
      // in no bit for Sum and Product (commutative), and keeps Min/Max's first operand
      // the one that travelled.
      std::memcpy(target + offset, incoming + offset, piece * sizeof(T));
      reduce_into(target + offset, own + offset, piece, op);
    }
    // The sends of this step read `outgoing`, which step + 1 overwrites when it is
    // sums[(step + 1) % 2] == sums[(step - 1) % 2]: finish them first.
    flight.wait_sends(flight.sends_posted());
    outgoing = target;
  }
  if (in_place && b > 0) std::memcpy(my_block.data(), outgoing, b * sizeof(T));
  if (op == ReduceOp::Average) finish_average(my_block.data(), b, n);
}

#define RINGDP_INSTANTIATE(T)                                                                 \
  template void reduce_scatter_ring<T>(const Communicator&, std::span<const T>, std::span<T>, \
                                       ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
