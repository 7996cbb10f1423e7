#include <catch2/catch.hpp>
#include <mpi.h>

#include <stdexcept>
#include <string>

#include "mpi_test.hpp"
#include "ringdp/comm/agreement.hpp"

using ringdp::test::all_ranks;

namespace {

// Runs agree() with a failure on the ranks selected by `fails`, and reports what was thrown.
struct Outcome {
  bool threw = false;
  int rank = -2;
  std::string cause;
  bool collective = false;
};

template <class Fails>
Outcome run_agree(const ringdp::Communicator& comm, Fails fails) {
  Outcome out;
  const std::string mine =
      fails(comm.rank()) ? "cannot open shard " + std::to_string(comm.rank()) : std::string();
  try {
    ringdp::agree(comm, mine);
  } catch (const ringdp::Error& e) {
    out = {true, e.rank(), e.cause(), e.collective()};
  }
  return out;
}

}  // namespace

TEST_CASE("agree returns on every rank when no rank failed") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const Outcome out = run_agree(comm, [](int) { return false; });
  CHECK(all_ranks(!out.threw));
}

TEST_CASE("a failure on one rank becomes the same Error on every rank") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  for (int failing = 0; failing < comm.size(); ++failing) {
    const Outcome out = run_agree(comm, [&](int r) { return r == failing; });
    const std::string expected = "cannot open shard " + std::to_string(failing);
    CHECK(all_ranks(out.threw && out.collective));
    CHECK(all_ranks(out.rank == failing));
    CHECK(all_ranks(out.cause == expected));
  }
}

TEST_CASE("several failing ranks: the lowest is named, the others counted") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  if (comm.size() < 2) return;  // same decision on every rank: size is global
  const Outcome out = run_agree(comm, [](int r) { return r >= 1; });
  const int others = comm.size() - 2;
  std::string expected = "cannot open shard 1";
  if (others > 0) expected += " (and " + std::to_string(others) + " other rank" + (others > 1 ? "s" : "") + " failed)";
  CHECK(all_ranks(out.threw && out.rank == 1 && out.cause == expected));
}

TEST_CASE("agree_on turns an exception on the last rank into an Error everywhere") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int last = comm.size() - 1;
  bool threw = false;
  int named = -1;
  std::string what;
  try {
    const int value = ringdp::agree_on(comm, [&] {
      if (comm.rank() == last) throw std::runtime_error("labels out of range");
      return 7;
    });
    (void)value;
  } catch (const ringdp::Error& e) {
    threw = true;
    named = e.rank();
    what = e.what();
  }
  CHECK(all_ranks(threw && named == last));
  CHECK(all_ranks(what == "ringdp: rank " + std::to_string(last) + ": labels out of range"));

  const int ok = ringdp::agree_on(comm, [] { return 42; });
  CHECK(all_ranks(ok == 42));
}
