// The settings module (ringdp/comm/settings.hpp): every RINGDP_* variable read with one
// rule. Each scenario is its own job (a Catch2 tag), because a process reads its
// environment once; CTest sets the variables (tests/comm/CMakeLists.txt), per rank for the
// MPMD launches, and tells the test what to expect through SETTINGS_TEST_* variables:
//   SETTINGS_TEST_VARIABLE  the RINGDP_* variable the scenario is about;
//   SETTINGS_TEST_EXPECT    a phrase the error's cause must contain;
//   SETTINGS_TEST_KIND      "io" when the error is an IoError (default: InvalidArgument).
// Which ranks hold a bad or differing value is worked out here from each rank's own
// environment (gathered over MPI), independently of the module under test.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "agreed_error.hpp"
#include "mpi_test.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/comm/stall.hpp"
#include "ringdp/error.hpp"

using ringdp::test::all_ranks;
using ringdp::test::Outcome;
using ringdp::test::outcome_of;
using ringdp::test::same_error_everywhere;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

ringdp::ErrorKind expected_kind() {
  return env("SETTINGS_TEST_KIND") == "io" ? ringdp::ErrorKind::Io
                                           : ringdp::ErrorKind::InvalidArgument;
}

// The lowest rank for which `mine` holds (the rank count when none).
int lowest_rank_where(bool mine) {
  int candidate = mine ? ringdp::test::world_rank() : ringdp::test::world_size();
  int lowest = 0;
  MPI_Allreduce(&candidate, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return lowest;
}

// Every rank's value of `name` ("" when unset), gathered.
std::vector<std::string> values_of_every_rank(const char* name) {
  const std::string mine = env(name);
  const int n = ringdp::test::world_size();
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(n));
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<std::string> all;
  for (int r = 0; r < n; ++r) {
    std::string value(static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)]), '\0');
    if (r == ringdp::test::world_rank()) value = mine;
    MPI_Bcast(value.data(), static_cast<int>(value.size()), MPI_CHAR, r, MPI_COMM_WORLD);
    all.push_back(value);
  }
  return all;
}

}  // namespace

TEST_CASE("a malformed variable is the same clear error on every rank", "[malformed]") {
  // Registered once per variable and bad value, on every rank or (MPMD) on one rank only.
  const std::string variable = env("SETTINGS_TEST_VARIABLE");
  const std::string expect = env("SETTINGS_TEST_EXPECT");
  // Set by the registration, the same on every rank (so are the REQUIREs' conditions).
  REQUIRE(!variable.empty());
  const bool bad_here = !env(variable.c_str()).empty();
  const int lowest_bad = lowest_rank_where(bad_here);
  REQUIRE(lowest_bad < ringdp::test::world_size());

  // Locally, settings() throws it on the ranks that read it (never collective), and
  // read_settings() reports it without throwing, leaving the defaults.
  const Outcome local = outcome_of([] { (void)ringdp::settings(); });
  const ringdp::SettingsReading& reading = ringdp::read_settings();
  const bool local_ok = bad_here
                            ? local.threw && local.kind == expected_kind() && !local.collective &&
                                  local.cause.find(expect) != std::string::npos &&
                                  reading.error == local.cause &&
                                  reading.values.segment_bytes == 0 && !reading.values.algorithm
                            : !local.threw && reading.error.empty();
  CHECK(all_ranks(local_ok));

  // Agreed when a Communicator is built: every rank throws the lowest bad rank's error,
  // and so does every later attempt (nothing is remembered as agreed).
  for (int attempt = 0; attempt < 2; ++attempt) {
    CHECK(same_error_everywhere(outcome_of([] { ringdp::Communicator comm(MPI_COMM_WORLD); }),
                                lowest_bad, {expect}, expected_kind()));
  }
}

TEST_CASE("a variable that differs between ranks is the same error on every rank", "[differ]") {
  // Registered as an MPMD launch that starts ranks with different values of
  // SETTINGS_TEST_VARIABLE (or with it unset on some ranks).
  const std::string variable = env("SETTINGS_TEST_VARIABLE");
  REQUIRE(!variable.empty());
  const std::vector<std::string> values = values_of_every_rank(variable.c_str());
  std::vector<int> differing;
  for (std::size_t r = 1; r < values.size(); ++r) {
    if (values[r] != values[0]) differing.push_back(static_cast<int>(r));
  }
  REQUIRE(!differing.empty());  // the registration starts the ranks with different values
  // The ranks as the message writes them: runs of three or more as "a-b".
  std::string list;
  for (std::size_t i = 0; i < differing.size();) {
    std::size_t j = i;
    while (j + 1 < differing.size() && differing[j + 1] == differing[j] + 1) ++j;
    const std::string from = std::to_string(differing[i]);
    const std::string to = std::to_string(differing[j]);
    list += (list.empty() ? "" : ",") + (j >= i + 2 ? from + "-" + to : from);
    if (j == i + 1) list += "," + to;
    i = j + 1;
  }
  const int first = differing.front();
  CHECK(same_error_everywhere(
      outcome_of([] { ringdp::Communicator comm(MPI_COMM_WORLD); }), first,
      {variable + " differs between ranks", "rank " + std::to_string(first) + " has ",
       "(ranks differing from rank 0: " + list + ")"}));
}

TEST_CASE("well-formed values are read as given", "[well-formed]") {
  // Registered with every variable set to a well-formed value (tests/comm/CMakeLists.txt).
  const ringdp::Settings& s = ringdp::settings();
  CHECK(all_ranks(s.algorithm == ringdp::Algorithm::RecursiveDoubling));
  CHECK(all_ranks(s.segment_bytes == 65536 && s.node_size == 1 && s.check &&
                  s.bucket_bytes == 262144 && s.fusion_bytes == std::size_t{0}));
  CHECK(all_ranks(s.stall_seconds == 2.5 && s.stall_abort_seconds == 30.0));
  CHECK(all_ranks(s.test_stall_rank == 1000 && s.test_stall_seconds == 0.25 &&
                  s.test_stall_step == -7));
  CHECK(all_ranks(s.tuning != nullptr && s.tuning_file == env("RINGDP_TUNING")));
  // And they take effect: a Communicator is built (the ranks agree) in check mode, Auto
  // runs rd, the ring's segment is the variable's (over the tuning file's 4096 at 3
  // ranks), the reducer's defaults and the stall limits follow.
  ringdp::Communicator comm(MPI_COMM_WORLD);
  CHECK(all_ranks(comm.check_mode()));
  CHECK(all_ranks(ringdp::resolve_algorithm(ringdp::Algorithm::Auto, std::size_t{1} << 24,
                                            comm.size()) == ringdp::Algorithm::RecursiveDoubling));
  CHECK(all_ranks(ringdp::ring_segment_bytes() == 65536 &&
                  ringdp::ring_segment_bytes(comm.size()) == 65536 &&
                  ringdp::ring_segment_bytes(3) == 65536));
  CHECK(all_ranks(ringdp::default_bucket_bytes() == 262144 && ringdp::default_fusion_bytes() == 0));
  const ringdp::StallSettings stall = ringdp::stall_settings();
  CHECK(all_ranks(stall.report_seconds == 2.5 && stall.abort_seconds == 30.0));
}

TEST_CASE("variables set but empty take their defaults", "[empty]") {
  // Registered with every variable set to the empty string.
  const ringdp::Settings defaults;
  const ringdp::Settings& s = ringdp::settings();
  CHECK(all_ranks(!s.algorithm && s.segment_bytes == 0 && s.tuning == nullptr &&
                  s.tuning_file.empty() && s.node_size == 0 && !s.check && s.bucket_bytes == 0 &&
                  !s.fusion_bytes));
  CHECK(all_ranks(s.stall_seconds == defaults.stall_seconds &&
                  s.stall_abort_seconds == defaults.stall_abort_seconds &&
                  s.test_stall_rank == -1));
  ringdp::Communicator comm(MPI_COMM_WORLD);
  CHECK(all_ranks(!comm.check_mode() && ringdp::ring_segment_bytes() == 0));
}
