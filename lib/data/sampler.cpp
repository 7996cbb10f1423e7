#include "ringdp/data/sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <span>

#include "data/random.hpp"
#include "ringdp/error.hpp"

namespace ringdp::data {

using detail::mix;
using detail::Rng;
using detail::Stream;
using detail::stream_key;

const char* to_string(SamplingMode mode) noexcept {
  switch (mode) {
    case SamplingMode::Global:
      return "global";
    case SamplingMode::Shard:
      return "shard";
    case SamplingMode::Auto:
      return "auto";
  }
  return "unknown";
}

namespace {

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

}  // namespace

SamplingMode DistributedSampler::resolve(SamplingMode mode, std::size_t dataset_bytes,
                                         std::size_t cache_bytes, std::size_t blocks,
                                         int ranks) noexcept {
  if (mode != SamplingMode::Auto) return mode;
  if (dataset_bytes <= cache_bytes || blocks < static_cast<std::size_t>(ranks)) {
    return SamplingMode::Global;
  }
  return SamplingMode::Shard;
}

DistributedSampler::DistributedSampler(std::size_t samples, std::size_t block_rows, int ranks,
                                       SamplingMode mode, const SamplerOptions& options)
    : samples_(samples),
      block_rows_(std::max<std::size_t>(1, block_rows)),
      blocks_(ceil_div(samples, std::max<std::size_t>(1, block_rows))),
      ranks_(ranks),
      mode_(mode),
      options_(options) {
  if (ranks <= 0) throw InvalidArgument(fmt::format("sampler: {} ranks", ranks));
  const auto k = static_cast<std::size_t>(ranks);
  const std::size_t batch = options_.batch_size;
  if (batch == 0) throw InvalidArgument("sampler: batch_size must be positive");
  if (samples < k) {
    throw InvalidArgument(fmt::format("sampler: {} samples, fewer than the {} ranks", samples, k));
  }
  if (options_.shuffle_chunks == 0) options_.shuffle_chunks = 1;

  if (mode == SamplingMode::Global) {
    if (options_.evaluation) {
      per_rank_ = ceil_div(samples, k);  // rank 0's share, the largest
    } else if (options_.drop_last) {
      per_rank_ = samples / (k * batch) * batch;
    } else {
      per_rank_ = ceil_div(samples, k);
    }
  } else if (mode == SamplingMode::Shard) {
    if (blocks_ < k) {
      throw InvalidArgument(fmt::format(
          "sampler: shard mode needs at least as many blocks as ranks, but {} samples in "
          "blocks of {} rows make {} blocks for {} ranks (use global mode or smaller chunks)",
          samples, block_rows_, blocks_, k));
    }
    // The deal: one permutation of the block ids from the seed alone (never the epoch),
    // cut into k contiguous slices whose lengths differ by at most one block. Ownership
    // is thus fixed for the run, and a rank's share differs from another's by at most one
    // block (plus the short last block).
    std::vector<std::size_t> ids(blocks_);
    std::iota(ids.begin(), ids.end(), std::size_t{0});
    Rng rng(stream_key(options_.seed, Stream::kBlockDeal));
    detail::shuffle(std::span<std::size_t>(ids), rng);
    owned_.resize(k);
    for (std::size_t r = 0; r < k; ++r) {
      owned_[r].assign(ids.begin() + static_cast<std::ptrdiff_t>(blocks_ * r / k),
                       ids.begin() + static_cast<std::ptrdiff_t>(blocks_ * (r + 1) / k));
      std::sort(owned_[r].begin(), owned_[r].end());
    }
    std::size_t smallest = samples;
    std::size_t largest = 0;
    for (int r = 0; r < ranks; ++r) {
      smallest = std::min(smallest, owned_rows(r));
      largest = std::max(largest, owned_rows(r));
    }
    if (options_.evaluation || !options_.drop_last) {
      per_rank_ = largest;
    } else {
      per_rank_ = smallest / batch * batch;
    }
  } else {
    throw InvalidArgument("sampler: mode must be global or shard (resolve auto first)");
  }
  if (per_rank_ == 0) {
    throw InvalidArgument(
        fmt::format("sampler: drop_last with {} samples on {} ranks leaves no full batch of {}",
                    samples, k, batch));
  }
  steps_ = ceil_div(per_rank_, batch);
}

const std::vector<std::size_t>& DistributedSampler::owned_blocks(int rank) const {
  static const std::vector<std::size_t> kNone;
  if (mode_ != SamplingMode::Shard) return kNone;
  return owned_.at(static_cast<std::size_t>(rank));
}

std::size_t DistributedSampler::block_size(std::size_t block) const noexcept {
  const std::size_t begin = block * block_rows_;
  return std::min(block_rows_, samples_ - std::min(samples_, begin));
}

std::size_t DistributedSampler::owned_rows(int rank) const noexcept {
  std::size_t rows = 0;
  for (std::size_t b : owned_[static_cast<std::size_t>(rank)]) rows += block_size(b);
  return rows;
}

RankEpoch DistributedSampler::epoch(int rank, std::uint64_t epoch) const {
  if (rank < 0 || rank >= ranks_) {
    throw InvalidArgument(fmt::format("sampler: rank {} outside [0, {})", rank, ranks_));
  }
  return mode_ == SamplingMode::Global ? global_epoch(rank, epoch) : shard_epoch(rank, epoch);
}

RankShare DistributedSampler::share(int rank) const {
  if (rank < 0 || rank >= ranks_) {
    throw InvalidArgument(fmt::format("sampler: rank {} outside [0, {})", rank, ranks_));
  }
  if (mode_ == SamplingMode::Global) {
    // Position j of rank r is p = j k + r of the (padded) permutation, real when p < N
    // (see global_epoch): ceil((N - r) / k) positions are below N.
    const auto k = static_cast<std::size_t>(ranks_);
    const std::size_t below_n = ceil_div(samples_ - static_cast<std::size_t>(rank), k);
    const std::size_t positions = options_.evaluation ? below_n : per_rank_;
    return {positions, std::min(positions, below_n)};
  }
  // Shard mode (see shard_epoch): the rank's own rows, cut to per_rank_ by drop_last, then
  // padded up to per_rank_ in training; in evaluation its own rows, unpadded.
  const std::size_t owned = owned_rows(rank);
  const std::size_t positions = options_.evaluation ? owned : per_rank_;
  return {positions, std::min(positions, owned)};
}

RankEpoch DistributedSampler::global_epoch(int rank, std::uint64_t epoch) const {
  const std::size_t n = samples_;
  const auto k = static_cast<std::size_t>(ranks_);
  const auto r = static_cast<std::size_t>(rank);
  // The same permutation on every rank: its stream depends on (seed, epoch) only.
  std::vector<std::uint64_t> permutation(n);
  std::iota(permutation.begin(), permutation.end(), std::uint64_t{0});
  if (options_.shuffle && !options_.evaluation) {
    Rng rng(mix(stream_key(options_.seed, Stream::kGlobalPermutation), epoch));
    detail::shuffle(std::span<std::uint64_t>(permutation), rng);
  }
  RankEpoch plan;
  if (options_.evaluation) {
    // Strided without padding: rank r holds positions r, r+k, ... below N.
    for (std::size_t p = r; p < n; p += k) plan.order.push_back(permutation[p]);
    plan.real = plan.order.size();
    return plan;
  }
  // Position j of rank r is p = j k + r of the (padded) permutation. Padding wraps around:
  // p >= N maps to p - N, i.e. the permutation's first entries are visited twice. No rank
  // sees one index twice: p and p + N are both = r (mod k) only when k divides N, and
  // then there is no padding.
  plan.order.resize(per_rank_);
  for (std::size_t j = 0; j < per_rank_; ++j) {
    const std::size_t p = j * k + r;
    plan.order[j] = permutation[p < n ? p : p - n];
    if (p < n) plan.real = j + 1;
  }
  return plan;
}

RankEpoch DistributedSampler::shard_epoch(int rank, std::uint64_t epoch) const {
  const bool shuffle = options_.shuffle && !options_.evaluation;
  std::vector<std::size_t> blocks = owned_[static_cast<std::size_t>(rank)];
  // A new visiting order of the rank's own blocks each epoch: the stream is keyed by
  // (seed, epoch, rank), so ranks differ from each other and epochs from each other.
  const std::uint64_t epoch_key = mix(mix(stream_key(options_.seed, Stream::kBlockOrder), epoch),
                                      static_cast<std::uint64_t>(rank));
  if (shuffle) {
    Rng rng(epoch_key);
    detail::shuffle(std::span<std::size_t>(blocks), rng);
  }

  RankEpoch plan;
  const std::size_t per_window = options_.shuffle_chunks;
  const std::size_t limit = options_.evaluation ? owned_rows(rank) : per_rank_;
  for (std::size_t first = 0; first < blocks.size() && plan.order.size() < limit;
       first += per_window) {
    Window window;
    window.begin = plan.order.size();
    for (std::size_t b = first; b < std::min(blocks.size(), first + per_window); ++b) {
      window.blocks.push_back(blocks[b]);
      const std::size_t begin = blocks[b] * block_rows_;
      for (std::size_t row = begin; row < begin + block_size(blocks[b]); ++row) {
        plan.order.push_back(row);
      }
    }
    // Rows are shuffled only within the window: the loader holds the window's chunks in
    // memory, so the shuffle never costs a read. Keyed by the window's number as well.
    std::span<std::uint64_t> rows(plan.order.data() + window.begin,
                                  plan.order.size() - window.begin);
    if (shuffle) {
      Rng rng(mix(mix(stream_key(options_.seed, Stream::kWindowShuffle), epoch_key),
                  plan.windows.size()));
      detail::shuffle(rows, rng);
    }
    window.end = std::min(plan.order.size(), limit);
    plan.windows.push_back(std::move(window));
  }
  if (plan.order.size() > limit) plan.order.resize(limit);  // drop_last truncation
  plan.real = plan.order.size();
  if (!options_.evaluation) {
    // Padding up to the largest share repeats the last window's rows in the same order:
    // they are still in memory, so padding never reads anything.
    const Window& last = plan.windows.back();
    const std::size_t span = last.end - last.begin;
    for (std::size_t j = 0; plan.order.size() < per_rank_; ++j) {
      plan.order.push_back(plan.order[last.begin + j % span]);
    }
  }
  return plan;
}

}  // namespace ringdp::data
