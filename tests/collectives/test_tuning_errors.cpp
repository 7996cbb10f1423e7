// RINGDP_TUNING that is bad, or not the same on every rank: building a Communicator (where
// the ranks agree on their settings) must throw the same Error on every rank (never a
// hang, never a rank that goes on with another algorithm). The file is read once per process, so
// each scenario runs in its own job: CTest passes the test case's tag, and for the per-rank
// scenarios the test sets RINGDP_TUNING itself, per rank, before ringdp first reads it. A file that
// cannot be read is a settings error like any other: tests/comm/test_settings.cpp.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "agreed_error.hpp"
#include "mpi_test.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"
#include "tuning_test_files.hpp"

using ringdp::Algorithm;
using ringdp::test::all_ranks;
using ringdp::test::kTuningDir;
using ringdp::test::Outcome;
using ringdp::test::outcome_of;
using ringdp::test::same_error_everywhere;
using ringdp::test::set_tuning;

namespace {

// Building a Communicator must fail alike on every rank, and so must the C API's handle
// (the same code everywhere: the failing rank's class). Nothing else is needed first: the
// ranks agree on their settings at construction, before any collective.
void check_every_entry_fails(int want_rank, const std::vector<std::string>& phrases,
                             ringdp::ErrorKind kind = ringdp::ErrorKind::InvalidArgument) {
  CHECK(same_error_everywhere(outcome_of([] { ringdp::Communicator comm(MPI_COMM_WORLD); }),
                              want_rank, phrases, kind));
  // Not remembered as agreed: the next one fails the same way.
  CHECK(same_error_everywhere(outcome_of([] {
                                ringdp::Communicator comm(MPI_COMM_WORLD);
                                std::vector<float> data(1000, 1.0f);
                                ringdp::allreduce(comm, std::span<float>(data));
                              }),
                              want_rank, phrases, kind));
}

}  // namespace

TEST_CASE("a malformed RINGDP_TUNING fails on every rank, naming file and line", "[bad-file]") {
  // Registered with RINGDP_TUNING=tuning/bad.txt, whose line 4 has "4K" for a byte count.
  // Locally (no communication), the reader and Auto's resolution throw InvalidArgument.
  const Outcome read = outcome_of([] { (void)ringdp::tuning_from_environment(); });
  CHECK(all_ranks(read.threw && !read.collective && read.cause.find("RINGDP_TUNING: ") == 0 &&
                  read.cause.find("bad.txt:4: '4K' is not a byte count") != std::string::npos));
  bool local_invalid = false;
  try {
    (void)ringdp::resolve_algorithm(Algorithm::Auto, 1024, 2);
  } catch (const ringdp::InvalidArgument& e) {
    local_invalid = e.cause() == read.cause;
  }
  CHECK(all_ranks(local_invalid));
  // Agreed: every rank names rank 0 (the lowest rank that failed: all did).
  check_every_entry_fails(0, {"RINGDP_TUNING: ", "bad.txt:4:", "'4K' is not a byte count"});
}

TEST_CASE("a tuning file bad on one rank only fails on every rank", "[one-rank-bad]") {
  const int last = ringdp::test::world_size() - 1;
  set_tuning(kTuningDir + (ringdp::test::world_rank() == last ? "/bad.txt" : "/good.txt"));
  check_every_entry_fails(last, {"RINGDP_TUNING: ", "bad.txt:4:"});
}

TEST_CASE("tuning files that differ between ranks fail on every rank", "[different-files]") {
  const int last = ringdp::test::world_size() - 1;
  set_tuning(kTuningDir + (ringdp::test::world_rank() == last ? "/other.txt" : "/good.txt"));
  check_every_entry_fails(
      last, {"RINGDP_TUNING differs between ranks", "rank 0 has a file with content hash",
             "rank " + std::to_string(last) + " has a file with content hash"});
}

TEST_CASE("RINGDP_TUNING set on some ranks only fails on every rank", "[set-on-some]") {
  const int last = ringdp::test::world_size() - 1;
  set_tuning(ringdp::test::world_rank() == last ? "" : kTuningDir + "/good.txt");
  check_every_entry_fails(last, {"RINGDP_TUNING differs between ranks",
                                 "rank " + std::to_string(last) + " has unset"});
}
