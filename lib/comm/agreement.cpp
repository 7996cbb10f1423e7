#include "ringdp/comm/agreement.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <limits>
#include <vector>

#include "ringdp/detail/mpi_check.hpp"
#include "ringdp/detail/wait.hpp"

namespace ringdp {

void agree(const Communicator& comm, std::string_view local_error) {
  // Non-blocking calls and the library's wait, so that a rank still busy (rank 0 writing
  // a checkpoint the others agree on) shows up in the stall inspector instead of a silent
  // hang. Ranks wait here for each other, so it counts as a collective of its own.
  const detail::CollectiveScope scope(comm, "agree");

  // One reduction finds the lowest failing rank and how many failed: each rank
  // contributes {its rank, 1} when failing and {size, 0} when fine. PMPI_ is called so
  // that the agreement never goes through an interposed MPI_Allreduce.
  const bool failed = !local_error.empty();
  int mine[2] = {failed ? comm.rank() : comm.size(), failed ? 1 : 0};
  int lowest = 0;
  int failures = 0;
  MPI_Request requests[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  RINGDP_MPI_CHECK(
      PMPI_Iallreduce(&mine[0], &lowest, 1, MPI_INT, MPI_MIN, comm.native(), &requests[0]));
  RINGDP_MPI_CHECK(
      PMPI_Iallreduce(&mine[1], &failures, 1, MPI_INT, MPI_SUM, comm.native(), &requests[1]));
  detail::wait_all(comm, requests);
  if (failures == 0) return;

  // The lowest failing rank sends its message to everyone.
  int length = comm.rank() == lowest ? static_cast<int>(local_error.size()) : 0;
  MPI_Request request = MPI_REQUEST_NULL;
  RINGDP_MPI_CHECK(MPI_Ibcast(&length, 1, MPI_INT, lowest, comm.native(), &request));
  detail::wait(comm, request);
  std::vector<char> text(static_cast<std::size_t>(length));
  if (comm.rank() == lowest) text.assign(local_error.begin(), local_error.end());
  RINGDP_MPI_CHECK(MPI_Ibcast(text.data(), length, MPI_CHAR, lowest, comm.native(), &request));
  detail::wait(comm, request);

  std::string cause(text.begin(), text.end());
  if (failures > 1)
    cause += fmt::format(" (and {} other rank{} failed)", failures - 1, failures > 2 ? "s" : "");
  throw Error(lowest, std::move(cause), /*collective=*/true);
}

}  // namespace ringdp
