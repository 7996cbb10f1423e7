// LoaderSource: the ShardedLoader's batches for the trainer.

#include "ringdp/train/loader_source.hpp"

namespace ringdp::train {

void LoaderSource::start_epoch(std::uint64_t epoch) {
  loader_.start_epoch(epoch);
  started_ = true;
}

std::vector<std::size_t> LoaderSource::real_per_step() const {
  if (!started_) return {};  // before start_epoch(), as BatchSource says
  return loader_.real_per_step();
}

}  // namespace ringdp::train
