// A bad RINGDP_TUNING through the C API: every rank must get the same code, that of the
// failing rank's error (RINGDP_ERROR_INVALID_ARGUMENT for a malformed or differing file,
// RINGDP_ERROR_IO for one that cannot be read; never RINGDP_ERROR_MISMATCH, which means
// ranks called a collective with different arguments), with the same message. Like
// test_tuning_errors.cpp, each scenario is its own job (a Catch2 tag): the file is read
// once per process.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/ringdp.h"
#include "tuning_test_files.hpp"

using ringdp::test::all_ranks;
using ringdp::test::kTuningDir;
using ringdp::test::set_tuning;

namespace {

struct CallResult {
  int code = -1;
  std::string message;
};

// One ringdp_allreduce on a fresh handle (creating it agrees on the file).
CallResult first_allreduce(ringdp_algorithm algorithm) {
  CallResult r;
  ringdp_comm* comm = nullptr;
  if (const int code = ringdp_comm_create(MPI_COMM_WORLD, &comm); code != RINGDP_SUCCESS) {
    r.code = code;
    r.message = ringdp_last_error();
    return r;
  }
  std::vector<float> data(100, 1.0f);
  r.code = ringdp_allreduce(comm, data.data(), data.size(), RINGDP_FLOAT32, RINGDP_SUM, algorithm);
  r.message = ringdp_last_error();
  ringdp_comm_free(comm);
  return r;
}

// Every rank got `code` with the same message containing `phrases`, from Auto and from an
// explicit algorithm alike (the agreement precedes the choice).
void check_code_everywhere(int code, const std::vector<std::string>& phrases) {
  for (const ringdp_algorithm algorithm : {RINGDP_AUTO, RINGDP_RING}) {
    const CallResult r = first_allreduce(algorithm);
    INFO("code " << r.code << " (" << ringdp_error_message(r.code) << "), message: " << r.message);
    bool ok = r.code == code;
    for (const std::string& p : phrases) ok = ok && r.message.find(p) != std::string::npos;
    CHECK(all_ranks(ok));
    CHECK(ringdp::test::same_on_all_ranks(
        ringdp::test::hash_bytes(r.message.data(), r.message.size())));
  }
}

}  // namespace

TEST_CASE("C API: a malformed RINGDP_TUNING is an invalid argument on every rank",
          "[capi-bad-file]") {
  // Registered with RINGDP_TUNING=tuning/bad.txt (line 4 is malformed).
  check_code_everywhere(RINGDP_ERROR_INVALID_ARGUMENT, {"RINGDP_TUNING: ", "bad.txt:4:", "'4K' is not a byte count"});
}

TEST_CASE("C API: a tuning file malformed on one rank only is an invalid argument everywhere",
          "[capi-one-rank-bad]") {
  const int last = ringdp::test::world_size() - 1;
  set_tuning(kTuningDir + (ringdp::test::world_rank() == last ? "/bad.txt" : "/good.txt"));
  check_code_everywhere(
      RINGDP_ERROR_INVALID_ARGUMENT, {"rank " + std::to_string(last) + ": RINGDP_TUNING: ", "bad.txt:4:"});
}

TEST_CASE("C API: tuning files that differ between ranks are an invalid argument everywhere",
          "[capi-different-files]") {
  const int last = ringdp::test::world_size() - 1;
  set_tuning(kTuningDir + (ringdp::test::world_rank() == last ? "/other.txt" : "/good.txt"));
  check_code_everywhere(RINGDP_ERROR_INVALID_ARGUMENT, {"RINGDP_TUNING differs between ranks"});
}

TEST_CASE("C API: a tuning file missing on one rank only is an I/O error everywhere",
          "[capi-missing-on-one]") {
  const int last = ringdp::test::world_size() - 1;
  set_tuning(kTuningDir + (ringdp::test::world_rank() == last ? "/does-not-exist.txt" : "/good.txt"));
  check_code_everywhere(RINGDP_ERROR_IO, {"rank " + std::to_string(last) +
                                              ": RINGDP_TUNING: cannot read tuning file",
                                          "does-not-exist.txt"});
}
