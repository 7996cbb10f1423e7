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
  // The plan is a pure function of (seed, epoch, logical rank): the same the loader uses.
  for (const int r : loader_.logical_ranks()) {
    const data::RankEpoch plan = loader_.sampler().epoch(r, epoch);
    positions_.push_back(plan.order.size());
    real_.push_back(plan.real);
  }
}

std::vector<std::size_t> LoaderSource::real_per_step() const {
  // Step s of a logical rank covers its positions [s b, (s+1) b); the first `real` of its
  // positions are real samples, the rest padding.
  if (positions_.empty()) return {};  // before start_epoch()
  const std::size_t b = loader_.sampler().batch_size();
  std::vector<std::size_t> real(steps_per_epoch(), 0);
  for (std::size_t s = 0; s < real.size(); ++s) {
    for (std::size_t l = 0; l < positions_.size(); ++l) {
      const std::size_t begin = std::min(positions_[l], s * b);
      const std::size_t end = std::min(positions_[l], (s + 1) * b);
      if (real_[l] > begin) real[s] += std::min(real_[l], end) - begin;
    }
  }
  return real;
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
