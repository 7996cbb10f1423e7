#pragma once
/// \file
/// The metrics CSV of a training run: one row per epoch (and optionally per step), with
/// the numbers the progress line and the summaries print.
///
/// Crash safety: rows are appended to "<path>.partial" and flushed one by one, so a long
/// run can be followed with `tail -f` and a crash keeps every finished row in the partial
/// file; close() then renames the partial file to `path` (after an fsync). So `path`
/// appears only complete, and a crash never leaves a truncated file under it.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ringdp/train/step_result.hpp"

namespace ringdp::train {

/// One row. Fields that do not apply (test numbers of a step row) are NaN and written as
/// empty cells.
struct MetricsRow {
  std::string kind;             ///< "step" or "epoch"
  std::int64_t epoch = 0;       ///< 1-based epoch the row belongs to
  std::int64_t step = 0;        ///< global steps done at the end of the row
  double learning_rate = 0.0;   ///< rate of the row's last step
  double train_loss = 0.0;      ///< mean over the row's real samples (all ranks)
  double train_accuracy = 0.0;  ///< fraction correct, in [0, 1]
  double test_loss = 0.0;       ///< NaN when not evaluated
  double test_accuracy = 0.0;   ///< NaN when not evaluated
  std::int64_t samples = 0;     ///< real samples trained on in the row (all ranks)
  double seconds = 0.0;         ///< wall time of the row
  double samples_per_second = 0.0;
  /// Time breakdown of the row's steps on this rank, in seconds (see StepTimes).
  double data_s = 0.0;
  double forward_s = 0.0;
  double backward_s = 0.0;
  double exposed_comm_s = 0.0;
  double optimizer_s = 0.0;
  /// Steps of the row skipped for NaN or Inf (--skip-nonfinite); their samples are not in
  /// the loss, accuracy and samples.
  std::int64_t skipped_steps = 0;
};

/// A row of `kind` ("step" or "epoch") of the 1-based `epoch`, ending at global step
/// `step`, from `train`: an epoch's result, or a single step's (EpochTally over that step,
/// with the step's total time as its seconds). The test fields are NaN, for the caller to
/// fill in when it evaluates.
[[nodiscard]] MetricsRow metrics_row(std::string kind, std::int64_t epoch, std::int64_t step,
                                     const EpochResult& train);

/// The header line's column names, in order.
[[nodiscard]] const std::vector<std::string>& metrics_columns();

/// Writes MetricsRows as CSV. Local (no MPI): only the writing rank (rank 0) creates one;
/// agree on the constructor's success if other ranks depend on it. Not thread-safe.
class MetricsCsv {
 public:
  /// Starts "<path>.partial" with the header. When `resume_after_step` >= 0 and `path`
  /// exists with the same header, its rows with step <= resume_after_step are copied
  /// first, so a resumed run's file covers the whole training. Throws IoError.
  explicit MetricsCsv(std::string path, std::int64_t resume_after_step = -1);
  /// Without close(): closes the partial file and leaves it (as after a crash).
  ~MetricsCsv();
  MetricsCsv(const MetricsCsv&) = delete;
  MetricsCsv& operator=(const MetricsCsv&) = delete;

  /// Appends and flushes one row. Throws IoError when the write fails.
  void write(const MetricsRow& row);
  /// Flushes, fsyncs and renames the partial file to the final path. Throws IoError.
  void close();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string partial_path() const { return path_ + ".partial"; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace ringdp::train
