#pragma once
// Rank 0's metrics CSV (--metrics), with its write errors agreed so that no rank goes on
// alone after a failure.

#include <cstdint>
#include <optional>
#include <string>

#include "options.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/train/metrics_csv.hpp"

namespace ringdp_train {

/// The metrics file of the run, written by rank 0. A write error is remembered and agreed
/// once per epoch (agree()), so that no per-step collective is needed.
class MetricsLog {
 public:
  /// Collective: rank 0 starts the file (when --metrics), continuing the rows of a resumed
  /// run up to `resume_step` (-1: a fresh run); every rank throws the same error if it cannot.
  MetricsLog(const ringdp::Communicator& comm, const Options& o, std::int64_t resume_step);

  /// Local: whether step rows are wanted (--metrics-steps).
  [[nodiscard]] bool steps() const noexcept { return active_ && steps_; }
  /// Local: appends a row on rank 0; a failure is kept for agree().
  void write(const ringdp::train::MetricsRow& row);
  /// Collective: every rank throws rank 0's write error (its class, IoError), if any.
  void agree();
  /// Collective: agree(), then rank 0 publishes the file under its final name.
  void close();

 private:
  const ringdp::Communicator& comm_;
  bool steps_;
  bool active_ = false;
  std::optional<ringdp::train::MetricsCsv> csv_;
  std::optional<ringdp::Failure> failure_;
};

}  // namespace ringdp_train
