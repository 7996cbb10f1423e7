// The readers of ShardedLoader: batches from the sampler's plan, by whole chunks (shard
// mode) or one selection per batch (global mode), with the cross-epoch caches.

#include "data/batch_maker.hpp"

#include <algorithm>
#include <cstring>

#include "data/scale_kernel.hpp"

namespace ringdp::data::detail {

BatchMaker::BatchMaker(H5Dataset dataset, DistributedSampler sampler, LoaderOptions options,
                       std::vector<int> logical)
    : dataset_(std::move(dataset)),
      sampler_(std::move(sampler)),
      options_(options),
      logical_(std::move(logical)) {}

bool BatchMaker::global_cache_on() const {
  return dataset_.size() * dataset_.row_bytes() <= options_.cache_bytes;
}

void BatchMaker::prepare_epoch(std::uint64_t epoch) {
  streams_.clear();
  held_.clear();
  window_moved_ = false;
  for (int r : logical_) streams_.push_back({r, sampler_.epoch(r, epoch), 0, false, {}});
}

// Shard mode: the chunk `block`, from the cache or read whole from the file.
BatchMaker::ChunkPtr BatchMaker::load_block(std::size_t block) {
  if (auto it = cache_.find(block); it != cache_.end()) return it->second;
  auto chunk = std::make_shared<ChunkData>();
  chunk->first_row = block * sampler_.block_rows();
  chunk->rows = sampler_.block_size(block);
  chunk->bytes = chunk->rows * dataset_.row_bytes();
  const std::size_t full = sampler_.block_rows() * dataset_.row_bytes();
  chunk->labels.resize(chunk->rows);
  // Exactly the chunk, never a row-by-row selection: viewed in place where the file
  // allows it (an unfiltered chunk: no copy at all), otherwise read whole - HDF5
  // decompresses it once, straight into a pooled buffer (an unfiltered chunk that cannot
  // be viewed is one direct chunk read, see read_rows).
  chunk->images = dataset_.map_chunk(chunk->first_row, chunk->labels).data();
  if (chunk->images == nullptr) {
    if (!pool_) pool_ = std::make_unique<ChunkPool>(full);
    chunk->buffer = pool_->acquire();
    chunk->images = chunk->buffer.get();
    dataset_.read_rows(chunk->first_row, chunk->rows,
                       std::span<std::byte>(chunk->buffer.get(), chunk->bytes), chunk->labels);
  }
  const std::size_t bytes = full + chunk->labels.size() * sizeof(std::int32_t);
  if (cached_bytes_.load() + bytes <= options_.cache_bytes) {
    cache_.emplace(block, chunk);
    cached_bytes_ += bytes;
  }
  return chunk;
}

// Loads the chunks of the stream's current window (those not held yet) and notes where
// they are, so that each row's lookup is a scan of a few pointers, not a hash lookup.
void BatchMaker::load_window(StreamState& s) {
  s.chunks.clear();
  for (std::size_t block : s.plan.windows[s.window].blocks) {
    auto it = held_.find(block);
    if (it == held_.end()) it = held_.emplace(block, load_block(block)).first;
    s.chunks.push_back(it->second.get());
  }
  s.loaded = true;
}

// Row `row` of the stream's current window.
BatchMaker::Source BatchMaker::shard_source(const StreamState& s, std::uint64_t row,
                                            std::size_t row_bytes) const {
  const auto block = static_cast<std::size_t>(row / sampler_.block_rows());
  const std::vector<std::size_t>& blocks = s.plan.windows[s.window].blocks;
  const auto at =
      static_cast<std::size_t>(std::find(blocks.begin(), blocks.end(), block) - blocks.begin());
  const ChunkData& chunk = *s.chunks.at(at);  // at() throws if the plan were inconsistent
  const std::size_t offset = static_cast<std::size_t>(row) - chunk.first_row;
  return {chunk.images + offset * row_bytes, chunk.labels[offset]};
}

// Keeps only the chunks of each stream's current window.
void BatchMaker::release_old_windows() {
  std::unordered_map<std::size_t, ChunkPtr> keep;
  for (const StreamState& s : streams_) {
    if (s.plan.windows.empty()) continue;
    for (std::size_t block : s.plan.windows[s.window].blocks) {
      if (auto it = held_.find(block); it != held_.end()) keep.emplace(block, it->second);
    }
  }
  // A chunk no window and no cache holds any more gives its buffer back to the pool
  // when `keep` replaces held_ here.
  held_.swap(keep);
}

// The columns of step `step` in shard mode: for each logical rank, its positions; the
// window holding a position is loaded when first reached, and the chunks of windows
// left behind are released at the start of the next batch, once the previous batch
// has been copied out of them (so at most about two windows are ever in memory).
void BatchMaker::shard_sources(std::size_t step, Batch& batch) {
  // Only a stream that moved to a new window during the last batch leaves chunks behind.
  if (window_moved_) release_old_windows();
  window_moved_ = false;
  const std::size_t b = sampler_.batch_size();
  const std::size_t row_bytes = dataset_.row_bytes();
  padding_sources_.clear();
  padding_indices_.clear();
  for (StreamState& s : streams_) {
    const std::size_t end = std::min(s.plan.order.size(), (step + 1) * b);
    for (std::size_t p = step * b; p < end; ++p) {
      const bool real = p < s.plan.real;
      if (real) {
        while (s.plan.windows[s.window].end <= p) {
          ++s.window;
          s.loaded = false;
          window_moved_ = true;
        }
      }  // padding positions repeat rows of the last window, which is the current one
      // Once per window, not per row: the chunks stay in held_ until the stream moves
      // on (release_old_windows keeps every stream's current window).
      if (!s.loaded) load_window(s);
      const std::uint64_t row = s.plan.order[p];
      (real ? sources_ : padding_sources_).push_back(shard_source(s, row, row_bytes));
      (real ? batch.indices : padding_indices_).push_back(row);
    }
  }
  batch.real = sources_.size();
  sources_.insert(sources_.end(), padding_sources_.begin(), padding_sources_.end());
  batch.indices.insert(batch.indices.end(), padding_indices_.begin(), padding_indices_.end());
}

// Global mode with the cache on: the rows of `wanted` (just read into the scratch
// buffers) are kept for the following batches and epochs.
void BatchMaker::cache_rows(const std::vector<std::uint64_t>& wanted) {
  const std::size_t row_bytes = dataset_.row_bytes();
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    std::memcpy(row_cache_.data() + wanted[i] * row_bytes, scratch_images_.data() + i * row_bytes,
                row_bytes);
    row_cache_labels_[wanted[i]] = scratch_labels_[i];
    row_cached_[wanted[i]] = true;
  }
}

// The columns of step `step` in global mode: the batch's rows not yet cached are read
// in one selection (sorted, runs of consecutive rows merged); rows read = rows used.
void BatchMaker::global_sources(std::size_t step, Batch& batch) {
  const std::size_t b = sampler_.batch_size();
  padding_indices_.clear();
  for (const StreamState& s : streams_) {
    const std::size_t end = std::min(s.plan.order.size(), (step + 1) * b);
    for (std::size_t p = step * b; p < end; ++p) {
      (p < s.plan.real ? batch.indices : padding_indices_).push_back(s.plan.order[p]);
    }
  }
  batch.real = batch.indices.size();
  batch.indices.insert(batch.indices.end(), padding_indices_.begin(), padding_indices_.end());
  const bool caching = global_cache_on();
  if (caching && row_cached_.empty()) {
    row_cache_.resize(dataset_.size() * dataset_.row_bytes());
    row_cache_labels_.resize(dataset_.size());
    row_cached_.assign(dataset_.size(), false);
    cached_bytes_ = row_cache_.size() + row_cache_labels_.size() * sizeof(std::int32_t);
  }
  std::vector<std::uint64_t> wanted;
  for (std::uint64_t row : batch.indices) {
    if (!caching || !row_cached_[row]) wanted.push_back(row);
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  std::vector<RowRange> ranges;
  for (std::uint64_t row : wanted) {
    if (!ranges.empty() && ranges.back().begin + ranges.back().count == row) {
      ++ranges.back().count;
    } else {
      ranges.push_back({static_cast<std::size_t>(row), 1});
    }
  }
  const std::size_t row_bytes = dataset_.row_bytes();
  scratch_images_.resize(wanted.size() * row_bytes);
  scratch_labels_.resize(wanted.size());
  dataset_.read_rows(ranges, scratch_images_, scratch_labels_);
  if (caching) cache_rows(wanted);
  for (std::uint64_t row : batch.indices) {
    if (caching) {
      sources_.push_back({row_cache_.data() + row * row_bytes, row_cache_labels_[row]});
    } else {
      const auto i = static_cast<std::size_t>(std::lower_bound(wanted.begin(), wanted.end(), row) -
                                              wanted.begin());
      sources_.push_back({scratch_images_.data() + i * row_bytes, scratch_labels_[i]});
    }
  }
}

// The columns of sources_ into the batch's matrix and labels.
void BatchMaker::copy_columns(Batch& batch) const {
  // Loop invariants read once: these are calls into another translation unit, which the
  // compiler cannot hoist out of the loop by itself.
  const std::size_t d = dataset_.features();
  const std::size_t row_bytes = dataset_.row_bytes();
  const bool bytes_stored = dataset_.element_type() == ElementType::UInt8;
  batch.x.resize(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(sources_.size()));
  batch.labels.resize(sources_.size());
  float* const x = batch.x.data();
  for (std::size_t c = 0; c < sources_.size(); ++c) {
    // Shuffled rows are scattered over a window of several chunks, far larger than the
    // CPU caches: fetching the row two columns ahead hides most of the memory latency,
    // which otherwise dominates the copy.
    if (c + 2 < sources_.size()) {
      const std::byte* ahead = sources_[c + 2].image;
      for (std::size_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(ahead + line);
    }
    float* column = x + c * d;  // column-major: a column is contiguous
    if (bytes_stored) {
      scale_bytes(reinterpret_cast<const std::uint8_t*>(sources_[c].image), column, d);
    } else {
      std::memcpy(column, sources_[c].image, d * sizeof(float));
    }
    batch.labels[c] = sources_[c].label;
  }
}

void BatchMaker::make_batch(std::uint64_t epoch, std::size_t step, Batch& batch) {
  batch.indices.clear();
  batch.labels.clear();
  batch.real = 0;
  batch.global_real = 0;
  batch.epoch = epoch;
  batch.step = step;
  sources_.clear();
  if (sampler_.mode() == SamplingMode::Shard) {
    shard_sources(step, batch);
  } else {
    global_sources(step, batch);
  }
  copy_columns(batch);
}

}  // namespace ringdp::data::detail
