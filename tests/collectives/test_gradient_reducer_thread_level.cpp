// GradientReducer under MPI_THREAD_FUNNELED: construction must refuse with a clear Error on
// every rank (its progress thread calls MPI, which FUNNELED forbids). Own main: the Catch2
// main of the other tests initialises MPI with SERIALIZED.

#include <mpi.h>

#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Funneled);
  int ok = 0;
  if (env.provided() != ringdp::ThreadLevel::Funneled) {
    // Some MPI builds grant more than asked; then the refusal cannot be provoked here.
    std::printf("MPI granted '%s' for 'funneled': nothing to test\n",
                ringdp::to_string(env.provided()));
    ok = 1;
  } else {
    ringdp::Communicator comm;
    std::vector<float> data(10);
    try {
      ringdp::GradientReducer reducer(comm, {std::span<float>(data)});
    } catch (const ringdp::Error& e) {
      const std::string what = e.what();
      ok = what.find("needs MPI thread level 'serialized'") != std::string::npos &&
           what.find("'funneled'") != std::string::npos;
      if (!ok) std::fprintf(stderr, "unexpected message: %s\n", e.what());
    }
  }
  int all_ok = 0;
  PMPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_ok == 1 ? 0 : 1;
}
