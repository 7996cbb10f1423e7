// The smallest ringdp program: every rank reports where it runs, then the ranks agree on
// a local check (here: every rank can see its host name), as every input check does.
#include <ringdp/ringdp.hpp>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Serialized);
  ringdp::Communicator comm(MPI_COMM_WORLD);

  char host[256] = {};
  const bool ok = gethostname(host, sizeof host - 1) == 0;
  ringdp::agree(comm, ok ? "" : "gethostname failed");

  for (int r = 0; r < comm.size(); ++r) {
    if (r == comm.rank()) {
      std::printf("rank %d of %d on %s (MPI thread level: %s)\n", comm.rank(), comm.size(), host,
                  ringdp::to_string(env.provided()));
      std::fflush(stdout);
    }
    comm.barrier();
  }
  if (comm.rank() == 0) std::printf("ringdp %s (%s): all %d ranks agree\n", RINGDP_VERSION_STRING, RINGDP_GIT_HASH, comm.size());
  return 0;
}
