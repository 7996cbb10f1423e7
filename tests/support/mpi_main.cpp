// Catch2 main for tests run under mpirun.
//
// Every rank runs the same test cases. Rank 0 prints Catch's report as usual; the other
// ranks' reports are captured and printed (each line prefixed with the rank) only when
// that rank failed. The results are then combined with MPI_MAX, so every rank exits with
// the same status and mpirun, and so CTest, fails when any one rank failed.
//
// Catch2 itself (its implementation and the session) is compiled in catch_impl.cpp.
#include <mpi.h>

#include <iostream>
#include <sstream>
#include <string>

#include "catch_session.hpp"
#include "ringdp/comm/environment.hpp"

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Serialized);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  std::ostringstream captured;
  std::streambuf* original = nullptr;
  if (rank != 0) original = std::cout.rdbuf(captured.rdbuf());

  const int result = ringdp::test::run_catch_session(argc, argv);

  if (original != nullptr) {
    std::cout.rdbuf(original);
    if (result != 0) {
      std::istringstream lines(captured.str());
      std::ostringstream prefixed;
      for (std::string line; std::getline(lines, line);) prefixed << "[rank " << rank << "] " << line << '\n';
      std::cerr << prefixed.str() << std::flush;
    }
  }
  int worst = 0;
  PMPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && worst != 0 && result == 0) {
    std::cout << "rank 0 passed, but another rank failed (its report is above)\n";
  }
  return worst == 0 ? 0 : 1;
}
