// LoaderSource: the ShardedLoader's batches for the trainer, real columns first.

#include "ringdp/train/loader_source.hpp"

#include <algorithm>
#include <utility>

namespace ringdp::train {

void LoaderSource::start_epoch(std::uint64_t epoch) {
  loader_.start_epoch(epoch);
  step_ = 0;
  positions_.clear();
  real_.clear();
  const auto& logical = loader_.logical_ranks();
  if (logical.size() > 1) {
    // The plan is a pure function of (seed, epoch, logical rank): the same the loader uses.
    for (const int r : logical) {
      const data::RankEpoch plan = loader_.sampler().epoch(r, epoch);
      positions_.push_back(plan.order.size());
      real_.push_back(plan.real);
    }
  }
}

bool LoaderSource::next(Batch& batch) {
  if (!loader_.next(delivered_)) return false;
  const std::size_t step = step_++;
  const std::size_t real = delivered_.real;
  const auto cols = static_cast<std::size_t>(delivered_.x.cols());
  // One logical rank, or no padding at all: its padding (if any) is already at the end.
  if (positions_.empty() || real == cols) {
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
