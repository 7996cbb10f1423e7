#pragma once
/// \file
/// Batch: one step's samples of this rank, as the data layer delivers them
/// (data::ShardedLoader) and the trainer consumes them (train::BatchSource).

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringdp::data {

/// One batch of this rank.
struct Batch {
  /// Samples as columns (features x columns, column-major, float): one sample per column,
  /// the layout Eigen's GEMM wants for W * x. The loader scales uint8 data to [0, 1]
  /// (v / 255) and copies float32 data as stored.
  Eigen::MatrixXf x;
  /// Label of each column, in [0, classes).
  std::vector<std::int32_t> labels;
  /// The first `real` columns are real samples; the rest (if any) are padding that repeats
  /// samples of the epoch so that every rank runs the same number of steps (see
  /// SamplerOptions::drop_last). The trainer gives padding zero weight, in the loss, the
  /// gradient and the metrics. In evaluation it equals the number of columns, which may be
  /// smaller than the batch size, even 0.
  std::size_t real = 0;
  /// Real samples of this step summed over all ranks, when known before the step (0:
  /// unknown). Sources leave it 0; train::Trainer::train_step() sets it from the table
  /// train::Trainer::start_epoch() builds from the sources' real_per_step(), and a caller
  /// of train::Trainer::step() may set it. Knowing it lets the trainer weigh the gradient
  /// without asking the other ranks first, so a step synchronises once.
  std::size_t global_real = 0;
  /// Row index in the file of each column (a data::ShardedLoader's batches; empty for
  /// sources without a file).
  std::vector<std::uint64_t> indices;
  /// Epoch (0-based) of the batch (a data::ShardedLoader's batches).
  std::uint64_t epoch = 0;
  /// Step of the batch within its epoch (a data::ShardedLoader's batches).
  std::size_t step = 0;
};

}  // namespace ringdp::data
