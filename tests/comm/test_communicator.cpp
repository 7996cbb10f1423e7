#include <catch2/catch.hpp>
#include <mpi.h>

#include <utility>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"

using ringdp::test::all_ranks;

TEST_CASE("Communicator duplicates the caller's communicator") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  int world_rank = 0, world_size = 0, relation = MPI_UNEQUAL;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm_compare(comm.native(), MPI_COMM_WORLD, &relation);
  // Same group and order but a different context: ringdp's messages never match the caller's.
  CHECK(all_ranks(relation == MPI_CONGRUENT));
  CHECK(all_ranks(comm.rank() == world_rank && comm.size() == world_size));
}

TEST_CASE("Communicator moves without double free") {
  ringdp::Communicator a(MPI_COMM_WORLD);
  MPI_Comm handle = a.native();
  ringdp::Communicator b(std::move(a));
  CHECK(all_ranks(b.native() == handle && a.native() == MPI_COMM_NULL));  // NOLINT(bugprone-use-after-move)
  ringdp::Communicator c(MPI_COMM_SELF);
  c = std::move(b);
  CHECK(all_ranks(c.native() == handle && c.size() == ringdp::test::world_size()));
}

TEST_CASE("split groups ranks by colour and orders them by key") {
  ringdp::Communicator world(MPI_COMM_WORLD);
  const int color = world.rank() % 2;
  const int key = -world.rank();  // reverse order inside each colour
  ringdp::Communicator half = world.split(color, key);
  int expected_size = 0;
  for (int r = 0; r < world.size(); ++r) expected_size += (r % 2 == color) ? 1 : 0;
  int higher_same_colour = 0;  // ranks of my colour with a larger world rank come first
  for (int r = world.rank() + 1; r < world.size(); ++r) higher_same_colour += (r % 2 == color);
  CHECK(all_ranks(half.size() == expected_size));
  CHECK(all_ranks(half.rank() == higher_same_colour));
}

TEST_CASE("MPI errors on the library's communicator become MpiError") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  int value = 0;
  bool threw = false;
  try {
    // A destination rank that does not exist: MPI returns MPI_ERR_RANK instead of aborting.
    RINGDP_MPI_CHECK(MPI_Send(&value, 1, MPI_INT, comm.size() + 3, 0, comm.native()));
  } catch (const ringdp::MpiError& e) {
    threw = e.routine() == "MPI_Send" && e.code() != MPI_SUCCESS &&
            std::string(e.what()).find("rank " + std::to_string(comm.rank())) != std::string::npos;
  }
  CHECK(all_ranks(threw));
}

TEST_CASE("checked_mpi_count refuses counts beyond int") {
  CHECK(all_ranks(ringdp::checked_mpi_count(12345) == 12345));
  bool threw = false;
  try {
    (void)ringdp::checked_mpi_count(std::size_t{1} << 31);
  } catch (const ringdp::InvalidArgument&) {
    threw = true;
  }
  CHECK(all_ranks(threw));
}

TEST_CASE("Environment reports the thread level MPI granted") {
  ringdp::Environment nested;  // MPI is already initialised by the test main: a no-op
  CHECK(all_ranks(!nested.owns_mpi()));
  CHECK(all_ranks(nested.provided() == ringdp::Environment::thread_level()));
  int level = 0;
  MPI_Query_thread(&level);
  CHECK(all_ranks(level >= MPI_THREAD_SERIALIZED ||
                  nested.provided() < ringdp::ThreadLevel::Serialized));
}
