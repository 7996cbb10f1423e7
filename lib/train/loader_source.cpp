// LoaderSource: the ShardedLoader's batches for the trainer, real columns first.

#include "ringdp/train/loader_source.hpp"

#include <algorithm>
#include <utility>

namespace ringdp::train {

LoaderSource::LoaderSource(data::ShardedLoader& loader) : loader_(loader) {
  // How many positions a logical rank has in an epoch, and how many of them are real, do
  // not depend on the epoch in any sampling mode: global mode permutes the same N samples
  // and deals position j k + r to rank r, whatever the permutation; shard mode deals the
  // blocks once per run (from the seed) and an epoch only reorders a rank's own blocks,
  // so its real count (all its rows, or the drop_last cut) and its padded length (the
  // largest share) stay; evaluation has neither shuffle nor padding. Which rows are
  // real changes each epoch, never how many. So one plan per logical rank, of epoch 0,
  // gives them for the whole run, instead of rebuilding full plans (an O(N) permutation
  // each) every epoch.
  for (const int r : loader_.logical_ranks()) {
    const data::RankEpoch plan = loader_.sampler().epoch(r, 0);
    positions_.push_back(plan.order.size());
    real_.push_back(plan.real);
  }
  // Step s of a logical rank covers its positions [s b, (s+1) b); the first `real` of its
  // positions are real samples, the rest padding.
  const std::size_t b = loader_.sampler().batch_size();
  real_per_step_.assign(loader_.steps_per_epoch(), 0);
  for (std::size_t s = 0; s < real_per_step_.size(); ++s) {
    for (std::size_t l = 0; l < positions_.size(); ++l) {
      const std::size_t begin = std::min(positions_[l], s * b);
      const std::size_t end = std::min(positions_[l], (s + 1) * b);
      if (real_[l] > begin) real_per_step_[s] += std::min(real_[l], end) - begin;
    }
  }
}

void LoaderSource::start_epoch(std::uint64_t epoch) {
  loader_.start_epoch(epoch);
  started_ = true;
  step_ = 0;
}

std::vector<std::size_t> LoaderSource::real_per_step() const {
  if (!started_) return {};  // before start_epoch(), as BatchSource says
  return real_per_step_;
}

bool LoaderSource::next(Batch& batch) {
  if (!loader_.next(delivered_)) return false;
  const std::size_t step = step_++;
  const std::size_t real = delivered_.real;
  const auto cols = static_cast<std::size_t>(delivered_.x.cols());
  // One logical rank, or no padding at all: its padding (if any) is already at the end.
  if (positions_.size() <= 1 || real == cols) {
    std::swap(batch.x, delivered_.x);
    std::swap(batch.labels, delivered_.labels);
    batch.real = real;
    return true;
  }
  // Several logical ranks: column blocks of each, in order; within a block, positions
  // below the logical rank's real count are real. Gather real columns first.
  const std::size_t b = loader_.sampler().batch_size();
  std::vector<std::size_t> order;
  std::vector<std::size_t> padding;
  order.reserve(cols);
  std::size_t column = 0;
  for (std::size_t s = 0; s < positions_.size(); ++s) {
    const std::size_t begin = std::min(positions_[s], step * b);
    const std::size_t end = std::min(positions_[s], (step + 1) * b);
    for (std::size_t p = begin; p < end; ++p, ++column) {
      (p < real_[s] ? order : padding).push_back(column);
    }
  }
  order.insert(order.end(), padding.begin(), padding.end());
  batch.x.resize(delivered_.x.rows(), delivered_.x.cols());
  batch.labels.resize(cols);
  for (std::size_t c = 0; c < cols && c < order.size(); ++c) {
    batch.x.col(static_cast<Eigen::Index>(c)) =
        delivered_.x.col(static_cast<Eigen::Index>(order[c]));
    batch.labels[c] = delivered_.labels[order[c]];
  }
  batch.real = real;
  return true;
}

}  // namespace ringdp::train
