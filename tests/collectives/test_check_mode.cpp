// Check mode: a rank calling with a different count or op makes every rank throw a clear
// Error (no hang); equal calls pass and give the normal result.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/error.hpp"

using ringdp::Algorithm;
using ringdp::ReduceOp;
using ringdp::test::all_ranks;

TEST_CASE("check mode names the rank whose count differs, on every rank", "[check]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  comm.set_check_mode(true);
  const int odd_one = comm.size() - 1;
  for (Algorithm algorithm : {Algorithm::Ring, Algorithm::RecursiveDoubling, Algorithm::Mpi,
                              Algorithm::ParameterServer, Algorithm::Shm,
                              Algorithm::Hierarchical}) {
    // Rank size-1 passes 1010 elements, everyone else 1009 (with 1 rank there is nothing
    // to differ from, and the call must pass).
    const std::size_t count = comm.size() > 1 && comm.rank() == odd_one ? 1010 : 1009;
    std::vector<float> data(count, 1.0f);
    std::string message;
    bool collective = false;
    int named = -2;
    try {
      ringdp::allreduce(comm, std::span<float>(data), ReduceOp::Sum, algorithm);
    } catch (const ringdp::Error& e) {
      message = e.what();
      collective = e.collective();
      named = e.rank();
    }
    if (comm.size() == 1) {
      CHECK(all_ranks(message.empty() && data[0] == 1.0f));
    } else {
      INFO("message: " << message);
      const bool names_both =
          message.find("rank " + std::to_string(odd_one)) != std::string::npos &&
          message.find("count 1010") != std::string::npos &&
          message.find("count 1009") != std::string::npos;
      CHECK(all_ranks(names_both && collective && named == odd_one));
    }
  }
}

TEST_CASE("check mode catches a differing operation and passes equal calls", "[check]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  comm.set_check_mode(true);
  std::vector<double> data(100, 2.0);
  const ReduceOp op = comm.size() > 1 && comm.rank() == 0 ? ReduceOp::Max : ReduceOp::Sum;
  std::string message;
  try {
    ringdp::allreduce(comm, std::span<double>(data), op);
  } catch (const ringdp::Error& e) {
    message = e.what();
  }
  if (comm.size() > 1) {
    INFO("message: " << message);
    CHECK(all_ranks(message.find("op max") != std::string::npos &&
                    message.find("op sum") != std::string::npos));
  }
  // Equal calls go through check mode untouched.
  std::vector<double> fine(100, 2.0);
  ringdp::allreduce(comm, std::span<double>(fine), ReduceOp::Sum);
  CHECK(all_ranks(fine[99] == 2.0 * comm.size()));
}

TEST_CASE("check mode covers broadcast counts", "[check]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  comm.set_check_mode(true);
  std::vector<int> data(comm.size() > 1 && comm.rank() == 1 ? 5 : 6, 3);
  bool threw = false;
  try {
    ringdp::broadcast(comm, std::span<int>(data), 0);
  } catch (const ringdp::Error& e) {
    threw = std::string(e.what()).find("broadcast") != std::string::npos;
  }
  CHECK(all_ranks(threw == (comm.size() > 1)));
}
