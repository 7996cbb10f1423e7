#pragma once
/// \file
/// The trainer's view of data: a source of this rank's batches, epoch by epoch.

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringdp::train {

/// One batch of this rank.
struct Batch {
  /// Samples as columns: features x columns, column-major, float.
  Eigen::MatrixXf x;
  /// Label of each column, in [0, classes).
  std::vector<std::int32_t> labels;
  /// The first `real` columns are real samples; the rest (if any) are padding that
  /// repeats samples of the epoch so that every rank runs the same number of steps. The
  /// trainer gives padding zero weight, in the loss, the gradient and the metrics.
  std::size_t real = 0;
  /// Real samples of this step summed over all ranks, when known before the step (0:
  /// unknown). Trainer::train_step() sets it from the table Trainer::start_epoch() builds
  /// from the sources' real_per_step(); a caller of Trainer::step() may set it. Knowing
  /// it lets the trainer weigh the gradient without asking the other ranks first, so a
  /// step synchronises once.
  std::size_t global_real = 0;
};

/// This rank's batches. The trainer calls start_epoch(e), then next() steps_per_epoch()
/// times. Every rank's source must report the same steps_per_epoch() for training (each
/// step is collective); for evaluation they may differ. Called from the trainer's thread
/// only; a source must not call MPI after construction (the trainer's progress thread may
/// be communicating while next() runs).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Batches per epoch of this rank.
  [[nodiscard]] virtual std::size_t steps_per_epoch() const = 0;
  /// Starts epoch `epoch` (0-based): the order of an epoch depends only on the epoch
  /// number and the source's seed, so a resumed run sees the same batches.
  virtual void start_epoch(std::uint64_t epoch) = 0;
  /// Fills `batch` with the next batch of the epoch; false when the epoch is over. May
  /// throw (an I/O error) on one rank only: Trainer::start_epoch(), train_step() and
  /// evaluate() turn that into the same collective Error on every rank.
  virtual bool next(Batch& batch) = 0;
  /// After start_epoch(): this rank's real count (Batch::real) of every step of the
  /// epoch, known in advance from the sample order alone; empty when the source cannot
  /// tell (then every training step first sums the counts across ranks). Trainer::
  /// start_epoch() asks once per epoch.
  [[nodiscard]] virtual std::vector<std::size_t> real_per_step() const { return {}; }
};

}  // namespace ringdp::train
