// The interposed MPI_Finalize: report the counts (when asked) while MPI is still fully
// alive, then finalise.

#include <mpi.h>

#include "counters.hpp"
#include "entry.hpp"

namespace ringdp::interpose {

int finalize() noexcept {
  int initialized = 0;
  int finalized = 0;
  PMPI_Initialized(&initialized);
  PMPI_Finalized(&finalized);
  // Never throws. The report is collective over MPI_COMM_WORLD, like MPI_Finalize.
  if (initialized != 0 && finalized == 0) report_counts();
  // ringdp's duplicates of the user's communicators are freed at the start of
  // PMPI_Finalize, by the attribute ringdp's communicator cache sets on MPI_COMM_SELF.
  return PMPI_Finalize();
}

}  // namespace ringdp::interpose

extern "C" int MPI_Finalize(void) { return ringdp::interpose::finalize(); }
