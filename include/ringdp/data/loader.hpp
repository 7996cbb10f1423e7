#pragma once
/// \file
/// ShardedLoader: this rank's batches as Eigen matrices, read ahead on a background thread.
///
/// The trainer's side, in full:
/// \code
///   ringdp::data::ShardedLoader loader(comm, ringdp::data::H5Dataset(comm, "data/mnist10k.h5"),
///                                      {.batch_size = 64, .seed = 1});
///   ringdp::data::Batch batch;
///   for (std::uint64_t epoch = 0; epoch < epochs; ++epoch) {
///     loader.start_epoch(epoch);
///     while (loader.next(batch)) { /* batch.x: features x samples, batch.labels */ }
///   }
/// \endcode
/// Every rank gets the same steps_per_epoch() batches per epoch, so per-step collectives
/// line up across ranks.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/data/batch.hpp"
#include "ringdp/data/h5_dataset.hpp"
#include "ringdp/data/sampler.hpp"

namespace ringdp::data {

/// Options of the loader (set them the same on every rank).
struct LoaderOptions {
  /// Batches the background thread prepares ahead of next(). 0: no thread, next() reads.
  std::size_t read_ahead = 4;
  /// Bytes of rows (stored size) this rank may keep in memory across epochs. Shard mode
  /// keeps the chunks it reads while they fit, so a rank whose share fits reads the file
  /// once; global mode keeps every row once the whole dataset fits, and nothing otherwise.
  /// A chunk viewed in the file's mapping (H5Dataset::map_chunk: unfiltered files) is
  /// kept as that view, its bytes in the kernel's page cache rather than in this process,
  /// but counts against the budget all the same (and the file must then stay unchanged
  /// while the loader lives, see map_chunk). Also decides SamplingMode::Auto.
  std::size_t cache_bytes = std::size_t{256} << 20;
};

/// Produces this rank's batches of an H5Dataset as planned by a DistributedSampler.
///
/// Construction is collective over `comm` (it agrees on the options and resolves
/// SamplingMode::Auto identically on every rank); everything after is local and, with
/// IoDriver::Serial, makes no MPI call, on any thread: the loader may run while another
/// thread of the trainer communicates. With IoDriver::MpiIo the reads are independent
/// MPI-IO calls (no other rank takes part) made on the read-ahead thread, so read_ahead > 0
/// then needs MPI_THREAD_MULTIPLE (the constructor throws, on every rank, otherwise). Reads
/// go by whole chunks in shard mode (each chunk decompressed once per epoch, or once per
/// run when cached; unfiltered chunks are viewed in place where possible, not copied) and
/// by one selection per batch in global mode. The methods are for one thread (the trainer's
/// main thread); the background thread is internal. An I/O failure during an epoch is
/// rethrown by next() on this rank only (as IoError, naming the file, the dataset and the
/// rows): the caller must agree on it or abort, since other ranks cannot know.
/// train::Trainer does (train_epoch() and train_step() agree on it within the step's own
/// allreduce).
class ShardedLoader {
 public:
  ShardedLoader(const Communicator& comm, H5Dataset dataset, SamplerOptions sampling,
                LoaderOptions options = {});
  ~ShardedLoader();
  ShardedLoader(const ShardedLoader&) = delete;
  ShardedLoader& operator=(const ShardedLoader&) = delete;
  ShardedLoader(ShardedLoader&&) = delete;
  ShardedLoader& operator=(ShardedLoader&&) = delete;

  /// Starts (or restarts) epoch `epoch`: drops what was read ahead for another epoch and
  /// starts reading this one's first batches in the background.
  void start_epoch(std::uint64_t epoch);
  /// Moves the next batch of the current epoch into `batch` (reusing its storage); false
  /// when the epoch is over. Its first Batch::real columns are the real samples: when this
  /// rank plays several logical ranks (SamplerOptions::virtual_ranks), each logical rank's
  /// real samples in rank order, then their padding in the same order. Throws
  /// InvalidArgument before the first start_epoch().
  bool next(Batch& batch);
  /// This rank's real count (Batch::real) of every step of an epoch, steps_per_epoch()
  /// entries: the same every epoch (an epoch changes which rows are real, never how many;
  /// see DistributedSampler::share()), known before any batch is read.
  [[nodiscard]] const std::vector<std::size_t>& real_per_step() const noexcept;

  /// Batches per epoch, the same on every rank.
  [[nodiscard]] std::size_t steps_per_epoch() const noexcept;
  /// Samples per batch of this rank (batch_size x logical ranks played); the last batch
  /// of an epoch may be shorter.
  [[nodiscard]] std::size_t batch_size() const noexcept;
  /// Values per sample (rows of Batch::x).
  [[nodiscard]] std::size_t features() const noexcept;
  [[nodiscard]] int classes() const noexcept;
  /// The resolved sampler (never SamplingMode::Auto).
  [[nodiscard]] const DistributedSampler& sampler() const noexcept;
  [[nodiscard]] const H5Dataset& dataset() const noexcept;
  /// Logical ranks this MPI rank plays (one, unless SamplerOptions::virtual_ranks).
  [[nodiscard]] const std::vector<int>& logical_ranks() const noexcept;
  /// Rows and bytes this rank has read from the file so far (thread-safe).
  [[nodiscard]] IoCounters counters() const noexcept;
  /// Bytes of rows held in the cross-epoch cache.
  [[nodiscard]] std::size_t cached_bytes() const noexcept;

  struct Impl;  ///< implementation, defined in the library only

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringdp::data
