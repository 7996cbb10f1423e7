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
/// BatchSource. The loader's batches are the trainer's (one Batch type), delivered as they
/// are: moved, real columns first, with the real counts the loader announces
/// (data::ShardedLoader::real_per_step()). Local: no MPI (the loader's constructor was the
/// collective part).
class LoaderSource final : public BatchSource {
 public:
  explicit LoaderSource(data::ShardedLoader& loader) : loader_(loader) {}

  [[nodiscard]] std::size_t steps_per_epoch() const override { return loader_.steps_per_epoch(); }
  void start_epoch(std::uint64_t epoch) override;
  bool next(Batch& batch) override { return loader_.next(batch); }
  [[nodiscard]] std::vector<std::size_t> real_per_step() const override;

 private:
  data::ShardedLoader& loader_;
  bool started_ = false;
};

}  // namespace ringdp::train
