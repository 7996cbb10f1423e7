// The interposed MPI_Finalize: report the counts (when asked) and free ringdp's
// duplicates while MPI is still fully alive, then finalise.

#include <mpi.h>

#include "counters.hpp"
#include "ringdp/comm/communicator_cache.hpp"

extern "C" int MPI_Finalize(void) {
  int initialized = 0;
  int finalized = 0;
  PMPI_Initialized(&initialized);
  PMPI_Finalized(&finalized);
  if (initialized != 0 && finalized == 0) {
    // Both never throw. The report is collective over MPI_COMM_WORLD, like MPI_Finalize.
    ringdp::interpose::report_counts();
    // The cache frees its duplicates at the start of PMPI_Finalize by itself (an
    // attribute on MPI_COMM_SELF); freeing them here first is as clean and keeps the
    // order explicit: after the report, before MPI goes.
    ringdp::release_cached_communicators();
  }
  return PMPI_Finalize();
}
