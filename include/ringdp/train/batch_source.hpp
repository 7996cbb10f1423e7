#pragma once
/// \file
/// The trainer's view of data: a source of this rank's batches, epoch by epoch.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringdp/data/batch.hpp"

namespace ringdp::train {

/// The trainer's batch is the data layer's: one type from the loader to the trainer.
using Batch = data::Batch;

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
