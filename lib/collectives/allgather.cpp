// allgather: MPI_Allgather when a rank's block fits one MPI call, otherwise a ring that
// forwards blocks in int-sized pieces (MPI_Allgather cannot split a block).

#include <fmt/format.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>

#include "algorithms.hpp"
#include "check.hpp"
#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "mpi_pieces.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"

namespace ringdp {
namespace {

constexpr int kAllgatherTag = 0x4147;  // "AG"

}  // namespace

template <Reducible T>
void allgather(const Communicator& comm, std::span<const T> mine, std::span<T> all) {
  const detail::CollectiveScope scope(comm, "allgather");
  const int n = comm.size();
  const std::size_t m = mine.size();
  if (comm.check_mode()) {
    detail::check_same_call(comm, "allgather", {.count = m, .type = data_type_of<T>});
  }
  if (all.size() != m * static_cast<std::size_t>(n)) {
    throw InvalidArgument(
        fmt::format("allgather: output has {} elements, expected {} ({} per rank x {} ranks)",
                    all.size(), m * static_cast<std::size_t>(n), m, n));
  }
  if (m == 0) return;
  // Own block first (memmove: `mine` may already be this rank's block of `all`).
  T* own = all.data() + static_cast<std::size_t>(comm.rank()) * m;
  if (own != mine.data()) std::memmove(own, mine.data(), m * sizeof(T));
  if (n == 1) return;
  const MPI_Datatype type = mpi_datatype<T>();
  if (m <= detail::max_mpi_count()) {
    // MPI's blocking call, not watched by the stall inspector (as broadcast.cpp says).
    RINGDP_MPI_CHECK(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all.data(),
                                   static_cast<int>(m), type, comm.native()));
    return;
  }
  // Ring: in step s, pass block (rank - s) right and take block (rank - s - 1) from the
  // left; after n-1 steps every block has visited every rank. Ringdp's own transfers, so
  // they wait through the watched wait.
  const int right = (comm.rank() + 1) % n;
  const int left = (comm.rank() + n - 1) % n;
  detail::Requests flight(comm, kAllgatherTag, type);
  for (int step = 0; step < n - 1; ++step) {
    const auto out = static_cast<std::size_t>(((comm.rank() - step) % n + n) % n);
    const auto in = static_cast<std::size_t>(((comm.rank() - step - 1) % n + n) % n);
    detail::for_each_piece(m, [&](std::size_t offset, int piece) {
      flight.irecv(all.data() + in * m + offset, piece, left);
      flight.isend(all.data() + out * m + offset, piece, right);
      flight.wait_all();
    });
  }
}

#define RINGDP_INSTANTIATE(T) \
  template void allgather<T>(const Communicator&, std::span<const T>, std::span<T>);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp
