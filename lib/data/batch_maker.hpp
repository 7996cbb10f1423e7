#pragma once
// The readers of ShardedLoader: they turn the sampler's plan of an epoch into batches,
// reading whole chunks (shard mode) or one selection per batch (global mode) and caching
// rows across epochs. The read-ahead queue and its thread are in loader.cpp. Private to
// the library.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "data/chunk_pool.hpp"
#include "ringdp/data/batch.hpp"
#include "ringdp/data/h5_dataset.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/data/sampler.hpp"

namespace ringdp::data::detail {

/// Makes this rank's batches, epoch by epoch. Not thread-safe: one thread at a time (the
/// loader's producer) calls prepare_epoch() and make_batch(); the accessors and
/// cached_bytes() may be called from any thread. Makes no MPI call with IoDriver::Serial.
class BatchMaker {
 public:
  /// `logical` are the logical ranks this MPI rank plays, in order.
  BatchMaker(H5Dataset dataset, DistributedSampler sampler, LoaderOptions options,
             std::vector<int> logical);
  BatchMaker(const BatchMaker&) = delete;
  BatchMaker& operator=(const BatchMaker&) = delete;

  /// Plans epoch `epoch` of every logical rank and drops the chunks held for another.
  void prepare_epoch(std::uint64_t epoch);
  /// Fills `batch` (reusing its storage) with step `step` of the prepared epoch: each
  /// logical rank's real samples in rank order, then their padding in the same order.
  /// Throws IoError when a read fails.
  void make_batch(std::uint64_t epoch, std::size_t step, Batch& batch);

  [[nodiscard]] const H5Dataset& dataset() const noexcept { return dataset_; }
  [[nodiscard]] const DistributedSampler& sampler() const noexcept { return sampler_; }
  [[nodiscard]] const LoaderOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::vector<int>& logical() const noexcept { return logical_; }
  /// Bytes of rows held in the cross-epoch cache (thread-safe).
  [[nodiscard]] std::size_t cached_bytes() const noexcept { return cached_bytes_.load(); }

  /// One chunk (block) of rows as stored: the unit of reading and of caching in shard
  /// mode. `images` points into the file's mapping (H5Dataset::map_chunk) or into
  /// `buffer`, which comes from the pool and goes back there when the last holder (the
  /// current windows, the cache) drops the chunk.
  struct ChunkData {
    std::size_t first_row = 0;
    std::size_t rows = 0;
    std::size_t bytes = 0;
    const std::byte* images = nullptr;
    PooledBuffer buffer;
    std::vector<std::int32_t> labels;
  };
  /// Where one column's sample comes from.
  struct Source {
    const std::byte* image = nullptr;
    std::int32_t label = 0;
  };

 private:
  using ChunkPtr = std::shared_ptr<const ChunkData>;

  // The progress of one logical rank through its epoch plan.
  struct StreamState {
    int rank = 0;
    RankEpoch plan;
    std::size_t window = 0;                // the window of the last real position visited
    bool loaded = false;                   // `window`'s chunks are in held_ ...
    std::vector<const ChunkData*> chunks;  // ... and here, in the order of its blocks
  };

  [[nodiscard]] bool global_cache_on() const;
  ChunkPtr load_block(std::size_t block);
  void load_window(StreamState& s);
  [[nodiscard]] Source shard_source(const StreamState& s, std::uint64_t row,
                                    std::size_t row_bytes) const;
  void release_old_windows();
  void shard_sources(std::size_t step, Batch& batch);
  void global_sources(std::size_t step, Batch& batch);
  void cache_rows(const std::vector<std::uint64_t>& wanted);
  void copy_columns(Batch& batch) const;

  H5Dataset dataset_;
  DistributedSampler sampler_;
  LoaderOptions options_;
  std::vector<int> logical_;

  std::vector<StreamState> streams_;
  // Declared before held_ and cache_, so destroyed after them: every chunk buffer has gone
  // back to the pool by the time it frees its regions.
  std::unique_ptr<ChunkPool> pool_;
  std::unordered_map<std::size_t, ChunkPtr> held_;  // chunks of the current windows
  bool window_moved_ = false;  // a stream entered a new window since held_ was last trimmed
  std::unordered_map<std::size_t, ChunkPtr> cache_;  // shard mode: kept across epochs
  std::vector<std::byte> row_cache_;                 // global mode: every row, once it fits
  std::vector<std::int32_t> row_cache_labels_;
  std::vector<bool> row_cached_;
  std::vector<std::byte> scratch_images_;  // global mode: one batch's fresh rows
  std::vector<std::int32_t> scratch_labels_;
  // The columns of the batch being made (reused): real ones, then the padding ones.
  std::vector<Source> sources_;
  std::vector<Source> padding_sources_;
  std::vector<std::uint64_t> padding_indices_;
  std::atomic<std::size_t> cached_bytes_{0};
};

}  // namespace ringdp::data::detail
