#pragma once
// The results as people read them: the table on stdout, the summary line, CSV and JSON.
//
// Units: time in microseconds; bandwidths in GB/s = 1e9 bytes per second.
//   algbw = bytes / time,  busbw = algbw x 2(n-1)/n  (n = ranks),
//   vs_mpi = MPI_Allreduce's time / this algorithm's time at the same size, which equals
//   the ratio of bus bandwidths for n > 1 and stays meaningful at 1 rank, where busbw is
//   0 by definition (nothing crosses between ranks).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "measure.hpp"
#include "options.hpp"
#include "run_info.hpp"

namespace ringdp::bench {

/// Bandwidths and the comparison with MPI of one row; `rows` holds the rows of the run
/// (or of its size) in which the MPI row at the same size is looked up.
struct Derived {
  double algbw_gbps = 0;
  double busbw_gbps = 0;
  std::optional<double> vs_mpi;  // empty when mpi was not measured
};
Derived derive(const Row& row, std::span<const Row> rows, int ranks);

struct AlgorithmSummary {
  Algorithm algorithm = Algorithm::Auto;
  std::optional<double> large;  // geometric mean of vs_mpi over sizes >= 1 MiB
  std::optional<double> small;  // ... over sizes <= 64 KiB
};

/// Is `auto` within 10% of the fastest other algorithm at every size?
struct AutoCheck {
  int sizes = 0;           // sizes compared
  int within = 0;          // sizes where auto's time <= 1.10 x the best other time
  double worst_ratio = 0;  // max over sizes of auto's time / best other time
  std::size_t worst_bytes = 0;
  Algorithm worst_best = Algorithm::Auto;  // the fastest algorithm at that size
  Algorithm worst_runs = Algorithm::Auto;  // what auto ran there
};

struct Summary {
  std::vector<AlgorithmSummary> per_algorithm;  // empty when mpi was not measured
  std::optional<AutoCheck> auto_check;          // when auto and another algorithm ran
  std::uint64_t wrong_total = 0;
};

inline constexpr double kAutoTolerance = 1.10;

Summary summarize(std::span<const Row> rows, const Options& options, int ranks);

/// Comment lines describing the run, then the column header.
std::string table_header(const RunInfo& info, const Options& options);
/// The table lines of `rows` (the rows of one size, as they come).
std::string table_rows(std::span<const Row> rows, const Options& options, int ranks);
/// The closing lines: the geometric means, auto vs the best, the error count.
std::string summary_text(const Summary& summary);

std::string to_csv(std::span<const Row> rows, const Options& options, int ranks);
std::string to_json(const RunInfo& info, const Options& options, std::span<const Row> rows,
                    const Summary& summary, const std::string& command_line);

}  // namespace ringdp::bench
