// An outside project using the installed ringdp: it must compile with only the installed
// headers and link with only the installed library and its declared dependencies.
#include <cstdio>
#include <ringdp/ringdp.hpp>
#include <vector>

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
  // The collectives through the installed headers and library: sum of ranks, every algorithm.
  for (auto algorithm :
       {ringdp::Algorithm::Ring, ringdp::Algorithm::RecursiveDoubling, ringdp::Algorithm::Mpi,
        ringdp::Algorithm::ParameterServer, ringdp::Algorithm::Auto}) {
    std::vector<double> data(1000, comm.rank());
    ringdp::allreduce(comm, std::span<double>(data), ringdp::ReduceOp::Sum, algorithm);
    const double expected = comm.size() * (comm.size() - 1) / 2.0;
    for (double v : data) {
      if (v != expected) {
        std::fprintf(stderr, "allreduce (%s) gave %g, expected %g\n", ringdp::to_string(algorithm),
                     v, expected);
        return 1;
      }
    }
  }
  if (comm.rank() == 0)
    std::printf("consumer ok: ringdp %s on %d ranks\n", RINGDP_VERSION_STRING, comm.size());
  return 0;
}
