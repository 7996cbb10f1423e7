#pragma once
/// \file
/// A model replica that spans several ranks (tensor and pipeline parallelism), as the
/// Trainer sees it: the step's forward, loss and backward in one call, and the way its
/// ranks' parts make up the unsplit model for checkpoints.

#include <cstddef>
#include <span>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/train/batch_source.hpp"

namespace ringdp::train {

/// One rank's part of a model replica split over several ranks. The Trainer built over a
/// Replica averages this rank's gradients over its communicator (the ranks holding the
/// same part in the other replicas: the data group) and agrees each step's metrics and
/// verdicts over world() (every rank of every replica), so that every rank decides alike.
///
/// Every rank of a replica must be given the same batches (shard the data by the data
/// group, not by world rank). Not thread-safe.
class Replica {
 public:
  virtual ~Replica() = default;

  /// This rank's part of the model: its parameter and gradient arenas.
  [[nodiscard]] virtual nn::Sequential<float>& model() = 0;
  /// Every rank of every replica (the communicator of the whole job).
  [[nodiscard]] virtual const Communicator& world() const = 0;
  /// The ranks of this replica (they run every batch together).
  [[nodiscard]] virtual const Communicator& members() const = 0;
  /// This rank's loss counts in a sum over world(): exactly one rank per replica says so.
  [[nodiscard]] virtual bool reports_loss() const = 0;

  /// Collective over the replica: forward, softmax cross-entropy over the first
  /// batch.real columns and backward, with the loss gradient of scale x (loss sum /
  /// batch.real). The parameter gradients land in model().gradients(); `hook` may be
  /// called as by nn::Sequential::backward() as layers finish. Returns the loss on the
  /// rank that reports_loss() (what it returns elsewhere is ignored).
  virtual nn::LossResult train_batch(const Batch& batch, double scale,
                                     const nn::BackwardHook& hook) = 0;
  /// Collective over the replica: the loss of the first batch.real (>= 1) columns.
  virtual nn::LossResult evaluate_batch(const Batch& batch) = 0;

  /// Parameters of the unsplit model.
  [[nodiscard]] virtual std::size_t full_parameter_count() const = 0;
  /// Collective over the replica: the unsplit array of which `local` (laid out like this
  /// rank's arena) is this rank's part, on every rank of the replica.
  [[nodiscard]] virtual std::vector<float> gather_full(std::span<const float> local) const = 0;
  /// Local: this rank's part of the unsplit array `full`, into `local`.
  virtual void scatter_full(std::span<const float> full, std::span<float> local) const = 0;
};

}  // namespace ringdp::train
