#include "ringdp/comm/abort.hpp"

#include <cstdio>
#include <cstdlib>

#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"

namespace ringdp {

void abort_job(MPI_Comm comm, std::string_view message, int exit_code) noexcept {
  const int rank = world_rank();
  std::fprintf(stderr, "ringdp: rank %d: %.*s; aborting the job\n", rank,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  if (Environment::initialized() && !Environment::finalized()) {
    MPI_Abort(comm == MPI_COMM_NULL ? MPI_COMM_WORLD : comm, exit_code);
  }
  std::_Exit(exit_code);
}

}  // namespace ringdp
