// InMemorySource: the global sampling order over samples in memory.

#include "ringdp/train/in_memory_source.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "ringdp/error.hpp"

namespace ringdp::train {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) without modulo bias: reject draws from the incomplete last block.
std::uint64_t bounded(std::uint64_t& state, std::uint64_t bound) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  for (;;) {
    const std::uint64_t draw = splitmix64(state);
    if (draw < limit) return draw % bound;
  }
}

}  // namespace

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  std::uint64_t state = seed * 0xD1B54A32D192ED03ull + epoch * 0x8CB92BA72F3D8DD7ull + 1;
  for (std::size_t i = n; i > 1; --i) {
    const auto j = static_cast<std::size_t>(bounded(state, i));
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

InMemorySource::InMemorySource(Eigen::MatrixXf features, std::vector<std::int32_t> labels, int rank,
                               int ranks, InMemoryOptions options)
    : features_(std::move(features)),
      labels_(std::move(labels)),
      rank_(rank),
      ranks_(ranks),
      options_(options) {
  const auto n = labels_.size();
  if (static_cast<std::size_t>(features_.cols()) != n) {
    throw InvalidArgument(
        fmt::format("InMemorySource: {} feature columns but {} labels", features_.cols(), n));
  }
  if (ranks < 1 || rank < 0 || rank >= ranks) {
    throw InvalidArgument(fmt::format("InMemorySource: rank {} of {} ranks", rank, ranks));
  }
  if (n < static_cast<std::size_t>(ranks)) {
    throw InvalidArgument(fmt::format("InMemorySource: {} samples for {} ranks", n, ranks));
  }
  if (options_.batch_size == 0) throw InvalidArgument("InMemorySource: batch size 0");
  // Every rank gets ceil(N/k) positions in training (padding included) and at most that
  // many in evaluation, so ceil(ceil(N/k)/b) steps fit every rank, and that equals
  // ceil(N/(k b)), the step count of a 1-rank run with batch k b.
  const std::size_t k = static_cast<std::size_t>(ranks);
  const std::size_t share = (n + k - 1) / k;
  steps_ = (share + options_.batch_size - 1) / options_.batch_size;
}

std::vector<std::size_t> InMemorySource::order(std::uint64_t epoch, std::size_t* real) const {
  const std::size_t n = labels_.size();
  const std::size_t k = static_cast<std::size_t>(ranks_);
  const bool shuffled = options_.shuffle && !options_.evaluation;
  std::vector<std::size_t> p;
  if (shuffled) {
    p = permutation(n, options_.seed, epoch);
  } else {
    p.resize(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = i;
  }
  const std::size_t positions = options_.evaluation ? n : k * ((n + k - 1) / k);
  std::vector<std::size_t> mine;
  std::size_t real_count = 0;
  for (std::size_t pos = static_cast<std::size_t>(rank_); pos < positions; pos += k) {
    // Positions past N wrap around to the permutation's start: padding.
    mine.push_back(p[pos % n]);
    if (pos < n) ++real_count;
  }
  if (real != nullptr) *real = real_count;
  return mine;
}

void InMemorySource::start_epoch(std::uint64_t epoch) {
  order_ = order(epoch, &real_);
  position_ = 0;
  started_ = true;
}

std::vector<std::size_t> InMemorySource::real_per_step() const {
  if (!started_) return {};
  // The same arithmetic as next(): step s covers positions [s b, (s+1) b) of the order.
  std::vector<std::size_t> real(steps_);
  for (std::size_t s = 0; s < steps_; ++s) {
    const std::size_t begin = std::min(s * options_.batch_size, order_.size());
    const std::size_t end = std::min(begin + options_.batch_size, order_.size());
    real[s] = real_ > begin ? std::min(real_, end) - begin : 0;
  }
  return real;
}

bool InMemorySource::next(Batch& batch) {
  if (!started_) throw InvalidArgument("InMemorySource::next before start_epoch");
  const std::size_t step = position_ / options_.batch_size;
  if (step >= steps_) return false;
  const std::size_t begin = std::min(position_, order_.size());
  const std::size_t end = std::min(position_ + options_.batch_size, order_.size());
  position_ += options_.batch_size;
  const std::size_t cols = end - begin;
  batch.x.resize(features_.rows(), static_cast<Eigen::Index>(cols));
  batch.labels.resize(cols);
  for (std::size_t c = 0; c < cols; ++c) {
    const std::size_t sample = order_[begin + c];
    batch.x.col(static_cast<Eigen::Index>(c)) = features_.col(static_cast<Eigen::Index>(sample));
    batch.labels[c] = labels_[sample];
  }
  // Real positions come first in the rank's order, padding last.
  batch.real = real_ > begin ? std::min(real_, end) - begin : 0;
  return true;
}

}  // namespace ringdp::train
