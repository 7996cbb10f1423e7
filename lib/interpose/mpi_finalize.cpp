// The interposed MPI_Finalize: report the counts (when asked) and free ringdp's
// duplicates while MPI is still fully alive, then finalise.

#include <mpi.h>

#include "comm_cache.hpp"
#include "counters.hpp"

extern "C" int MPI_Finalize(void) {
  int initialized = 0;
  int finalized = 0;
  PMPI_Initialized(&initialized);
  PMPI_Finalized(&finalized);
  if (initialized != 0 && finalized == 0) {
    // Both never throw. The report is collective over MPI_COMM_WORLD, like MPI_Finalize.
    ringdp::interpose::report_counts();
    // MPI_Finalize deletes the attributes of MPI_COMM_SELF (and, in some MPIs, of
    // MPI_COMM_WORLD) itself, but at a point where MPI may already count as finalised
    // and the duplicates could no longer be freed; freeing them here is always clean.
    ringdp::interpose::release_all();
  }
  return PMPI_Finalize();
}
