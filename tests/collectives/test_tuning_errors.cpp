// RINGDP_TUNING that is bad, or not the same on every rank: building a Communicator (where
// the ranks agree on their settings) must throw the same Error on every rank (never a
// hang, never a rank that goes on with another algorithm). The file is read once per process, so each scenario
// runs in its own job: CTest passes the test case's tag, and for the per-rank scenarios the
// test sets RINGDP_TUNING itself, per rank, before ringdp first reads it.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"
#include "tuning_test_files.hpp"

using ringdp::Algorithm;
using ringdp::test::all_ranks;
using ringdp::test::kTuningDir;
using ringdp::test::set_tuning;

namespace {

struct Outcome {
  bool threw = false;
  ringdp::ErrorKind kind = ringdp::ErrorKind::Generic;
  bool collective = false;
  int rank = -2;
  std::string cause;
};

template <class Fn>
Outcome outcome_of(Fn&& fn) {
  Outcome o;
  try {
    fn();
  } catch (const ringdp::Error& e) {
    o.threw = true;
    o.kind = e.kind();
    o.collective = e.collective();
    o.rank = e.rank();
    o.cause = e.cause();
  }
  return o;
}

// Every rank threw a collective error of `kind` with the same cause and rank, containing
// `phrases`.
bool same_error_everywhere(const Outcome& o, int want_rank,
                           const std::vector<std::string>& phrases,
                           ringdp::ErrorKind kind = ringdp::ErrorKind::InvalidArgument) {
  bool ok = o.threw && o.kind == kind && o.collective && o.rank == want_rank;
  for (const std::string& p : phrases) ok = ok && o.cause.find(p) != std::string::npos;
  UNSCOPED_INFO("threw " << o.threw << " kind " << ringdp::to_string(o.kind) << " collective "
                         << o.collective << " rank " << o.rank << " cause: " << o.cause);
  const bool identical =
      ringdp::test::same_on_all_ranks(ringdp::test::hash_bytes(o.cause.data(), o.cause.size()));
  return all_ranks(ok) && identical;
}

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

TEST_CASE("RINGDP_TUNING naming a missing file fails on every rank", "[missing-file]") {
  // Registered with RINGDP_TUNING=<a path that does not exist>: an I/O error.
  check_every_entry_fails(0, {"RINGDP_TUNING: cannot read tuning file", "does-not-exist"},
                          ringdp::ErrorKind::Io);
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
