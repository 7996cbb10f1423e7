// reduce_scatter: MPI_Reduce_scatter_block when a block fits one MPI call, otherwise one
// MPI_Reduce per block and int-sized piece, rooted at the block's owner.

#include <fmt/format.h>
#include <mpi.h>

#include <cstdint>

#include "algorithms.hpp"
#include "check.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "comm/wait.hpp"  // CollectiveScope

namespace ringdp {

template <Reducible T>
void reduce_scatter(const Communicator& comm, std::span<const T> data, std::span<T> my_block,
                    ReduceOp op) {
  const detail::CollectiveScope scope(comm, "reduce_scatter");
  const int n = comm.size();
  const std::size_t b = my_block.size();
  if (comm.check_mode()) {
    detail::check_same_call(
        comm, "reduce_scatter",
        {.count = data.size(), .type = data_type_of<T>, .op = static_cast<int>(op)});
  }
  if (data.size() != b * static_cast<std::size_t>(n)) {
    throw InvalidArgument(
        fmt::format("reduce_scatter: input has {} elements, expected {} ({} per block x {} ranks)",
                    data.size(), b * static_cast<std::size_t>(n), b, n));
  }
  check_op_supports(op, data_type_of<T>);
  const MPI_Op mop = mpi_op(op);
  if (b == 0) return;
  const MPI_Datatype type = mpi_datatype<T>();
  if (b <= detail::max_mpi_count()) {
    // MPI's blocking calls, not watched by the stall inspector (as broadcast.cpp says).
    RINGDP_MPI_CHECK(MPI_Reduce_scatter_block(data.data(), my_block.data(), static_cast<int>(b),
                                              type, mop, comm.native()));
  } else {
    for (int owner = 0; owner < n; ++owner) {
      const T* block = data.data() + static_cast<std::size_t>(owner) * b;
      detail::for_each_piece(b, [&](std::size_t offset, int piece) {
        RINGDP_MPI_CHECK(MPI_Reduce(block + offset, my_block.data() + offset, piece, type, mop,
                                    owner, comm.native()));
      });
    }
  }
  if (op == ReduceOp::Average) detail::finish_average(my_block.data(), b, n);
}

#define RINGDP_INSTANTIATE(T) \
  template void reduce_scatter<T>(const Communicator&, std::span<const T>, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp
