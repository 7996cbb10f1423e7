// broadcast and allgather, backed by MPI (split into int-sized pieces for large messages).

#include <fmt/format.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>

#include "algorithms.hpp"
#include "check.hpp"
#include "mpi_pieces.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "comm/wait.hpp"  // CollectiveScope

namespace ringdp {

template <Reducible T>
void broadcast(const Communicator& comm, std::span<T> data, int root) {
  const detail::CollectiveScope scope(comm, "broadcast");
  if (comm.check_mode()) {
    detail::check_same_call(comm, "broadcast",
                            {.count = data.size(), .type = data_type_of<T>, .root = root});
  }
  if (root < 0 || root >= comm.size()) {
    throw InvalidArgument(fmt::format("broadcast root {} is not a rank of a {}-rank communicator",
                                      root, comm.size()));
  }
  // MPI's blocking MPI_Bcast, not watched by the stall inspector: the non-blocking
  // MPI_Ibcast a watched wait needs is Open MPI's libnbc, which was measured far slower for
  // many small calls with more ranks than cores (see stall.hpp).
  detail::for_each_piece(data.size(), [&](std::size_t offset, int piece) {
    RINGDP_MPI_CHECK(
        MPI_Bcast(data.data() + offset, piece, mpi_datatype<T>(), root, comm.native()));
  });
}

#define RINGDP_INSTANTIATE(T) template void broadcast<T>(const Communicator&, std::span<T>, int);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)
#undef RINGDP_INSTANTIATE

}  // namespace ringdp
