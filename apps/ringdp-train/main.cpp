// ringdp-train: the bundled data-parallel training application.
//
// Exit codes: 0 success; 1 a failure during the run (bad data, bad checkpoint, a failed
// write, a failed rank); 2 bad flags. Every failure prints one line naming the cause.

#include <fmt/format.h>
#include <mpi.h>

#include <cstdio>
#include <exception>

#include "options.hpp"
#include "ringdp/comm/abort.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"
#include "run.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int rank_of_world() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

}  // namespace

int main(int argc, char** argv) {
  // Every rank parses the same argv, so every rank reaches the same verdict without
  // communicating; only rank 0 speaks (below, once MPI says which rank this is). Parsing
  // is pure, so it may come before MPI_Init, which needs its result:
  ringdp_train::Options options;
  std::string message;
  const ringdp_train::ParseResult parsed = ringdp_train::parse(argc, argv, options, message);

  // The trainer's gradient reducer calls MPI from its progress thread while the main
  // thread waits, so SERIALIZED is needed (checked by the reducer, with a clear error).
  // With --io mpiio the loader's read-ahead thread calls MPI-IO at the same time: MULTIPLE.
  const bool mpiio = parsed == ringdp_train::ParseResult::Run && options.io == "mpiio";
  ringdp::Environment environment(
      argc, argv, mpiio ? ringdp::ThreadLevel::Multiple : ringdp::ThreadLevel::Serialized);
  const bool root = rank_of_world() == 0;

  switch (parsed) {
    case ringdp_train::ParseResult::Help:
      if (root) fmt::print("{}", message);
      return 0;
    case ringdp_train::ParseResult::Error:
      if (root) fmt::print(stderr, "ringdp-train: {} (see --help)\n", message);
      return kExitUsage;
    case ringdp_train::ParseResult::Run:
      break;
  }

  try {
    ringdp_train::run(options);
    return 0;
  } catch (const ringdp::Error& e) {
    if (e.collective()) {
      // Every rank holds this error: end cleanly, rank 0 says why.
      std::fflush(stdout);
      if (root) {
        if (e.rank() >= 0) {
          fmt::print(stderr, "ringdp-train: error (rank {}): {}\n", e.rank(), e.cause());
        } else {
          fmt::print(stderr, "ringdp-train: error: {}\n", e.cause());
        }
      }
      return kExitFailure;
    }
    // Only this rank knows: the others may be waiting in a collective, so end the job.
    ringdp::abort_job(MPI_COMM_WORLD, e.cause(), kExitFailure);
  } catch (const std::exception& e) {
    ringdp::abort_job(MPI_COMM_WORLD, e.what(), kExitFailure);
  }
}
