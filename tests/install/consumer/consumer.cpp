// An outside project using the installed ringdp: it must compile with only the installed
// headers and link with only the installed library and its declared dependencies.
#include <ringdp/ringdp.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv);
  ringdp::Communicator comm(MPI_COMM_WORLD);
  try {
    ringdp::agree(comm, comm.rank() == comm.size() - 1 ? "consumer check" : "");
    std::fprintf(stderr, "agreement did not throw\n");
    return 1;
  } catch (const ringdp::Error& e) {
    if (e.rank() != comm.size() - 1) return 1;
  }
  if (comm.rank() == 0) std::printf("consumer ok: ringdp %s on %d ranks\n", RINGDP_VERSION_STRING, comm.size());
  return 0;
}
