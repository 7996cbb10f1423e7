// Allreduce by the MPI library itself: the reference the other algorithms are measured
// against, and the fallback Auto picks where it is fastest.
//
// The one collective that waits inside MPI, unwatched by the stall inspector: the other
// algorithms wait through detail::wait(), but the non-blocking MPI_Iallreduce such a wait
// needs is a different implementation in Open MPI 4.1 (libnbc, not the tuned blocking
// one), measured 1.3-1.7x slower here (2 ranks, 8 B - 128 KiB, interleaved, median of
// 9 x 2,000 calls: e.g. 5.9 vs 10.1 us at 8 B, 266 vs 390 us at 128 KiB). "mpi" is meant to
// be exactly MPI's allreduce, so it stays MPI_Allreduce; the trainer's own small
// reductions use recursive doubling, which is watched.

#include <mpi.h>

#include <cstdint>

#include "algorithms.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::detail {

template <Reducible T>
void allreduce_mpi(const Communicator& comm, std::span<T> data, ReduceOp op) {
  // PMPI_, not MPI_: when ringdp serves an interposed MPI_Allreduce, this call must reach
  // the MPI library rather than come back into ringdp.
  const MPI_Op mop = mpi_op(op);
  for_each_piece(data.size(), [&](std::size_t offset, int piece) {
    RINGDP_MPI_CHECK(PMPI_Allreduce(MPI_IN_PLACE, data.data() + offset, piece, mpi_datatype<T>(), mop,
                                    comm.native()));
  });
  // Every rank divides the same summed bits the same way, so the results stay identical.
  if (op == ReduceOp::Average) finish_average(data.data(), data.size(), comm.size());
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_mpi<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp::detail
