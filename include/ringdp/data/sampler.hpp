#pragma once
/// \file
/// DistributedSampler: which sample indices each rank visits, in which order, per epoch.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringdp::data {

/// How samples are spread over ranks.
enum class SamplingMode {
  /// Each epoch one permutation of 0..N-1 from (seed, epoch), the same on every rank; rank
  /// r takes positions r, r+k, r+2k... (PyTorch's DistributedSampler). The union of the k
  /// ranks' batches at step i is batch i of a 1-rank run with k times the batch. Any rank
  /// may touch any row: for data that fits the cache budget or is cheap to read at random.
  Global,
  /// The file's chunks (blocks) are dealt to ranks once, from the seed; a rank only ever
  /// reads its own blocks. Each epoch it visits them in a new order, a window of
  /// `shuffle_chunks` blocks at a time, and shuffles the rows within each window. For
  /// data larger than memory: every chunk is read and decompressed once per epoch.
  Shard,
  /// Global when the whole dataset fits the cache budget (and there are fewer blocks than
  /// ranks), Shard otherwise.
  Auto,
};

/// "global", "shard", "auto".
[[nodiscard]] const char* to_string(SamplingMode mode) noexcept;

/// Options of the sampler; set them the same on every rank.
struct SamplerOptions {
  SamplingMode mode = SamplingMode::Auto;
  /// Samples per batch per (logical) rank.
  std::size_t batch_size = 64;
  std::uint64_t seed = 0;
  /// Shuffle each epoch (global: permutation; shard: block order and window shuffle).
  bool shuffle = true;
  /// Training only. false (default): every rank gets the same number of samples by
  /// padding — global: the permutation is extended by wrap-around (its first M-N entries
  /// repeated, M = k ceil(N/k)); shard: a rank with fewer rows than the largest share
  /// repeats the rows of its last window, in the same order. The last batch may be short,
  /// equally on every rank. true: only full batches; global drops the permutation's tail
  /// that does not fill a batch on every rank, shard truncates every rank to the largest
  /// multiple of batch_size not above the smallest share.
  bool drop_last = false;
  /// Evaluation: no shuffle, no padding, no dropping. Every sample is delivered exactly
  /// once (global: rank r takes rows r, r+k, ...; shard: its blocks in file order), shares
  /// may be uneven; all ranks still run the same number of steps, a rank whose share is
  /// over gets short or empty batches (Batch::real tells how many samples are real).
  bool evaluation = false;
  /// 0: one logical rank per MPI rank. k > 0: the sample streams of a k-rank run, k a
  /// multiple of the number of MPI ranks p; each MPI rank plays k/p consecutive logical
  /// ranks and its batch at step i is the concatenation of theirs. A 1-rank run with k
  /// reproduces, step by step, the union of the k ranks' batches of a k-rank run.
  int virtual_ranks = 0;
  /// Shard mode: blocks per shuffle window (the loader holds about two windows in memory).
  std::size_t shuffle_chunks = 4;
};

/// One window of a shard-mode epoch: the blocks read together, and the positions of the
/// rank's epoch order that they fill.
struct Window {
  std::size_t begin = 0;            ///< first position in RankEpoch::order
  std::size_t end = 0;              ///< one past the last position (padding positions excluded)
  std::vector<std::size_t> blocks;  ///< block (= chunk) ids, read whole
};

/// What one logical rank visits in one epoch.
struct RankEpoch {
  /// Sample (row) indices in delivery order; batch i is positions [i B, min((i+1) B, size)).
  std::vector<std::uint64_t> order;
  /// Positions [0, real) are real samples; positions >= real are padding repeats.
  std::size_t real = 0;
  /// Shard mode: the windows, in order, covering positions [0, real). Empty in global mode.
  std::vector<Window> windows;
};

/// How many positions one logical rank visits in an epoch, and how many of them are real
/// samples (the rest are padding repeats).
struct RankShare {
  std::size_t positions = 0;  ///< RankEpoch::order.size()
  std::size_t real = 0;       ///< RankEpoch::real
};

/// The deterministic plan of which rows go where. Local and pure: no MPI, no I/O; the
/// same arguments give the same plan on every rank and every platform (the permutations
/// use the library's own RNG, not std::shuffle). Thread-safe (const methods).
class DistributedSampler {
 public:
  /// `samples` N >= `ranks`, `block_rows` = the dataset's chunk rows, `ranks` = number
  /// of logical ranks k. `mode` must be Global or Shard (resolve Auto with resolve()).
  /// Throws InvalidArgument on a bad combination (batch_size 0, shard with fewer blocks
  /// than ranks, ...).
  DistributedSampler(std::size_t samples, std::size_t block_rows, int ranks, SamplingMode mode,
                     const SamplerOptions& options);

  /// Auto -> Global when `dataset_bytes` <= `cache_bytes` or there are fewer blocks than
  /// ranks, Shard otherwise; Global and Shard are returned as they are.
  [[nodiscard]] static SamplingMode resolve(SamplingMode mode, std::size_t dataset_bytes,
                                            std::size_t cache_bytes, std::size_t blocks,
                                            int ranks) noexcept;

  [[nodiscard]] SamplingMode mode() const noexcept { return mode_; }
  [[nodiscard]] int ranks() const noexcept { return ranks_; }
  [[nodiscard]] std::size_t samples() const noexcept { return samples_; }
  [[nodiscard]] std::size_t batch_size() const noexcept { return options_.batch_size; }
  [[nodiscard]] std::size_t block_rows() const noexcept { return block_rows_; }
  [[nodiscard]] std::size_t blocks() const noexcept { return blocks_; }
  [[nodiscard]] const SamplerOptions& options() const noexcept { return options_; }
  /// Batches per epoch, the same for every logical rank.
  [[nodiscard]] std::size_t steps_per_epoch() const noexcept { return steps_; }

  /// Shard mode: the blocks owned by logical rank `rank`, in increasing order (fixed for
  /// the whole run). Global mode: empty.
  [[nodiscard]] const std::vector<std::size_t>& owned_blocks(int rank) const;
  /// Rows of block `block` (the last block may be short).
  [[nodiscard]] std::size_t block_size(std::size_t block) const noexcept;
  /// The epoch plan of logical rank `rank`.
  [[nodiscard]] RankEpoch epoch(int rank, std::uint64_t epoch) const;
  /// The share of logical rank `rank`, the same in every epoch: an epoch changes which
  /// rows a rank visits, never how many nor how many of them are real (global mode deals
  /// positions of a permutation of the same N rows; shard mode deals the blocks once per
  /// run and an epoch only reorders them). Equals epoch(rank, e).order.size() and
  /// epoch(rank, e).real for every e, without building the plan.
  [[nodiscard]] RankShare share(int rank) const;

 private:
  [[nodiscard]] RankEpoch global_epoch(int rank, std::uint64_t epoch) const;
  [[nodiscard]] RankEpoch shard_epoch(int rank, std::uint64_t epoch) const;
  [[nodiscard]] std::size_t owned_rows(int rank) const noexcept;

  std::size_t samples_;
  std::size_t block_rows_;
  std::size_t blocks_;
  int ranks_;
  SamplingMode mode_;
  SamplerOptions options_;
  std::size_t steps_ = 0;
  std::size_t per_rank_ = 0;  // training: samples per rank per epoch (after pad or drop)
  std::vector<std::vector<std::size_t>> owned_;
};

}  // namespace ringdp::data
