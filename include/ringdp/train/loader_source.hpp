#pragma once
/// \file
/// The HDF5 ShardedLoader as the trainer's BatchSource.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringdp/data/loader.hpp"
#include "ringdp/train/batch_source.hpp"

namespace ringdp::train {

/// Adapts a data::ShardedLoader (owned by the caller, outliving the source) to
/// BatchSource. Batches are moved, not copied, except in one case: when this rank plays
/// several logical ranks (SamplerOptions::virtual_ranks), the loader's batch is the
/// concatenation of the logical ranks' batches, so padding of one logical rank can sit
/// before real samples of the next; the source then moves the real columns first (in
/// their order), as the trainer expects. The real counts this needs (and real_per_step())
/// are the same every epoch, so they are worked out once, at construction. Local: no MPI
/// (the loader's constructor was the collective part).
class LoaderSource final : public BatchSource {
 public:
  explicit LoaderSource(data::ShardedLoader& loader);

  [[nodiscard]] std::size_t steps_per_epoch() const override { return loader_.steps_per_epoch(); }
  void start_epoch(std::uint64_t epoch) override;
  bool next(Batch& batch) override;
  [[nodiscard]] std::vector<std::size_t> real_per_step() const override;

  /// The last batch as the loader delivered it (row indices, epoch, step).
  [[nodiscard]] const data::Batch& last() const noexcept { return delivered_; }

 private:
  data::ShardedLoader& loader_;
  data::Batch delivered_;
  // Per logical rank of this MPI rank: positions in an epoch and how many are real.
  std::vector<std::size_t> positions_;
  std::vector<std::size_t> real_;
  // This rank's real count of each step (all its logical ranks together).
  std::vector<std::size_t> real_per_step_;
  bool started_ = false;
  std::size_t step_ = 0;
};

}  // namespace ringdp::train
