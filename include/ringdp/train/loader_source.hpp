#pragma once
/// \file
/// LoaderSource: the data layer's ShardedLoader as the trainer's BatchSource.

#include <cstddef>
#include <cstdint>

#include "ringdp/data/loader.hpp"
#include "ringdp/train/batch_source.hpp"

namespace ringdp::train {

/// Feeds a Trainer from a ShardedLoader (training or evaluation mode). The batch matrices
/// are swapped with the loader's, not copied, so the loader refills the previous step's
/// storage and steady-state training allocates nothing. Local, like the loader after its
/// construction: no MPI call. The loader must outlive the source. Not thread-safe.
class LoaderSource final : public BatchSource {
 public:
  explicit LoaderSource(data::ShardedLoader& loader) : loader_(loader) {}

  [[nodiscard]] std::size_t steps_per_epoch() const override { return loader_.steps_per_epoch(); }
  void start_epoch(std::uint64_t epoch) override { loader_.start_epoch(epoch); }
  bool next(Batch& batch) override {
    if (!loader_.next(staging_)) return false;
    batch.x.swap(staging_.x);
    batch.labels.swap(staging_.labels);
    batch.real = staging_.real;
    return true;
  }

 private:
  data::ShardedLoader& loader_;
  data::Batch staging_;
};

}  // namespace ringdp::train
