// allgather: a ring of ringdp's own (watched by the stall inspector), the node's shared
// window, or MPI_Allgather (split into a ring of int-sized pieces when a rank's block does
// not fit one MPI call, which MPI_Allgather cannot split).

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "algorithms.hpp"
#include "check.hpp"
#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "mpi_pieces.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"
#include "shm_collectives.hpp"

namespace ringdp {
namespace {

constexpr int kAllgatherTag = 0x4147;  // "AG"

// Ring: in step s, pass block (rank - s) right and take block (rank - s - 1) from the
// left; after n-1 steps every block has visited every rank. Each block moves in pieces of
// at most one ring segment (and one MPI count), so that a rank forwards the first piece
// of a block while later ones arrive.
template <class T>
void ring_allgather(const Communicator& comm, std::span<T> all, std::size_t m) {
  const int n = comm.size();
  const int right = (comm.rank() + 1) % n;
  const int left = (comm.rank() + n - 1) % n;
  const MPI_Datatype type = mpi_datatype<T>();
  const std::size_t segment = std::max<std::size_t>(
      1, std::min(ring_segment_bytes(n) / sizeof(T), detail::max_mpi_count()));
  detail::Requests flight(comm, kAllgatherTag, type);
  for (int step = 0; step < n - 1; ++step) {
    const auto out = static_cast<std::size_t>(((comm.rank() - step) % n + n) % n);
    const auto in = static_cast<std::size_t>(((comm.rank() - step - 1) % n + n) % n);
    for (std::size_t offset = 0; offset < m; offset += segment) {
      const int piece = static_cast<int>(std::min(segment, m - offset));
      flight.irecv(all.data() + in * m + offset, piece, left);
      flight.isend(all.data() + out * m + offset, piece, right);
    }
    // The block received in this step is the one sent in the next: all of it first.
    flight.wait_all();
  }
}

}  // namespace

template <Reducible T>
void allgather(const Communicator& comm, std::span<const T> mine, std::span<T> all,
               Algorithm algorithm) {
  const detail::CollectiveScope scope(comm, "allgather");
  const int n = comm.size();
  const std::size_t m = mine.size();
  const Algorithm chosen =
      detail::resolve_block_algorithm(algorithm, n, comm.node_layout(), "allgather");
  if (comm.check_mode()) {
    detail::check_same_call(
        comm, "allgather",
        {.count = m, .type = data_type_of<T>, .algorithm = static_cast<int>(chosen)});
  }
  if (all.size() != m * static_cast<std::size_t>(n)) {
    throw InvalidArgument(
        fmt::format("allgather: output has {} elements, expected {} ({} per rank x {} ranks)",
                    all.size(), m * static_cast<std::size_t>(n), m, n));
  }
  if (n == 1) {
    if (all.data() != mine.data()) std::memmove(all.data(), mine.data(), m * sizeof(T));
    return;
  }
  if (chosen == Algorithm::Shm) {
    // Every rank's own block first (memmove: `mine` may already be this rank's block of
    // `all`), then the others' from the window. Even with m == 0 every rank takes part,
    // so that a count that differs between ranks is an error on every rank.
    T* own = all.data() + static_cast<std::size_t>(comm.rank()) * m;
    if (own != mine.data()) std::memmove(own, mine.data(), m * sizeof(T));
    std::vector<detail::Slice> blocks(static_cast<std::size_t>(n));
    for (int j = 0; j < n; ++j) blocks[static_cast<std::size_t>(j)] = {j * m, m};
    detail::shm_allgather<T>(comm, detail::ShmKind::Allgather, own, all.size(), blocks, all.data(),
                             /*skip_own=*/true);
    return;
  }
  if (m == 0) return;
  T* own = all.data() + static_cast<std::size_t>(comm.rank()) * m;
  if (own != mine.data()) std::memmove(own, mine.data(), m * sizeof(T));
  if (chosen == Algorithm::Mpi && m <= detail::max_mpi_count()) {
    // MPI's blocking call, not watched by the stall inspector (as broadcast.cpp says).
    RINGDP_MPI_CHECK(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all.data(),
                                   static_cast<int>(m), mpi_datatype<T>(), comm.native()));
    return;
  }
  ring_allgather(comm, all, m);
}

#define RINGDP_INSTANTIATE(T) \
  template void allgather<T>(const Communicator&, std::span<const T>, std::span<T>, Algorithm);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp
