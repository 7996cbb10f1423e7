// reduce_scatter: a ring of ringdp's own (reduce_scatter_ring.cpp), the node's shared
// window, or MPI_Reduce_scatter_block (one MPI_Reduce per block and int-sized piece,
// rooted at the block's owner, when a block does not fit one MPI call).

#include <fmt/format.h>
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "algorithms.hpp"
#include "check.hpp"
#include "comm/wait.hpp"  // CollectiveScope
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"
#include "shm_collectives.hpp"

namespace ringdp {
namespace {

template <class T>
void mpi_reduce_scatter(const Communicator& comm, std::span<const T> data, std::span<T> my_block,
                        ReduceOp op) {
  const int n = comm.size();
  const std::size_t b = my_block.size();
  const MPI_Op mop = mpi_op(op);
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

}  // namespace

template <Reducible T>
void reduce_scatter(const Communicator& comm, std::span<const T> data, std::span<T> my_block,
                    ReduceOp op, Algorithm algorithm) {
  const detail::CollectiveScope scope(comm, "reduce_scatter");
  const int n = comm.size();
  const std::size_t b = my_block.size();
  const Algorithm chosen =
      detail::resolve_block_algorithm(algorithm, n, comm.node_layout(), "reduce_scatter");
  if (comm.check_mode()) {
    detail::check_same_call(comm, "reduce_scatter",
                            {.count = data.size(),
                             .type = data_type_of<T>,
                             .op = static_cast<int>(op),
                             .algorithm = static_cast<int>(chosen)});
  }
  if (data.size() != b * static_cast<std::size_t>(n)) {
    throw InvalidArgument(
        fmt::format("reduce_scatter: input has {} elements, expected {} ({} per block x {} ranks)",
                    data.size(), b * static_cast<std::size_t>(n), b, n));
  }
  check_op_supports(op, data_type_of<T>);
  (void)mpi_op(op);  // an op value outside the enum throws here, on every rank
  if (chosen == Algorithm::Shm && n > 1) {
    std::vector<detail::Slice> blocks(static_cast<std::size_t>(n));
    for (int j = 0; j < n; ++j) blocks[static_cast<std::size_t>(j)] = {j * b, b};
    detail::shm_reduce_scatter<T>(comm, detail::ShmKind::ReduceScatter, data, blocks,
                                  my_block.data(), op);
    return;
  }
  if (b == 0) return;
  if (chosen == Algorithm::Mpi) return mpi_reduce_scatter(comm, data, my_block, op);
  detail::reduce_scatter_ring(comm, data, my_block, op);
}

#define RINGDP_INSTANTIATE(T)                                                                      \
  template void reduce_scatter<T>(const Communicator&, std::span<const T>, std::span<T>, ReduceOp, \
                                  Algorithm);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp
