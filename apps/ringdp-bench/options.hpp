#pragma once
// The command line of ringdp-bench: what to measure and where to write it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringdp/types.hpp"

namespace ringdp::bench {

struct Options {
  std::size_t min_bytes = 8;
  std::size_t max_bytes = std::size_t{256} << 20;
  std::size_t factor = 2;
  std::vector<Algorithm> algorithms = {Algorithm::Ring,         Algorithm::RecursiveDoubling,
                                       Algorithm::Mpi,          Algorithm::ParameterServer,
                                       Algorithm::Shm,          Algorithm::Hierarchical,
                                       Algorithm::Auto};
  int warmup = 1;              // after the verification call, which already ran each algorithm once
  int iters = 0;               // 0: chosen per point from the warm-up (see measure.cpp)
  int repetitions = 5;         // timed blocks per algorithm, interleaved
  double point_seconds = 0.1;  // time budget per (size, algorithm) when iters == 0
  int min_iters = 5;           // fewest timed calls per point when iters == 0
  DataType type = DataType::Float32;
  ReduceOp op = ReduceOp::Sum;
  std::string csv_path;
  std::string json_path;
  std::string tune_path;  // update this tuning file with the measured choices (tuning_file.hpp)
  std::size_t segment_bytes =
      0;  // ring segment for the run (0: RINGDP_SEGMENT_BYTES, tuning, default)
  std::uint64_t seed = 1;
  bool shared = false;  // the working buffer is a SharedBuffer (no copy-in for shm and hier)
  bool floor = true;    // measure the memory floor at every size, interleaved
  // --algos was given: every algorithm listed must run. Otherwise the defaults that cannot
  // run on this layout are left out (shm over several nodes; hier on one, where it is shm).
  bool algorithms_given = false;
  // Test hook: corrupt one element of this algorithm's result on the last rank before it
  // is compared, to prove that wrong results are counted and fail the run.
  std::optional<Algorithm> corrupt_for_testing;
};

/// The outcome of parsing: options to run with, or an exit code (help was printed, or an
/// error message when `error` is set). Every rank parses the same argv, so every rank
/// reaches the same outcome without communicating.
struct ParseResult {
  std::optional<Options> options;
  int exit_code = 0;
  std::string message;  // what to print (help text or the error), by rank 0 only
};

ParseResult parse_options(int argc, char** argv);

/// Parses a byte count: a number with an optional binary suffix K, M, G (or KiB, MiB,
/// GiB; also lower case). Throws InvalidArgument otherwise.
std::size_t parse_bytes(const std::string& text);

/// "8 B", "4 KiB", "256 MiB": the largest binary unit that divides `bytes` exactly.
std::string format_bytes(std::size_t bytes);

}  // namespace ringdp::bench
