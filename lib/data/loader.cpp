#include "ringdp/data/loader.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "data/chunk_pool.hpp"
#include "data/random.hpp"
#include "data/scale_kernel.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::data {
namespace {

// One chunk (block) of rows as stored: the unit of reading and of caching in shard mode.
// `images` points into the file's mapping (H5Dataset::map_chunk) or into `buffer`, which
// comes from the loader's ChunkPool and goes back there when the last holder (the current
// windows, the cache) drops the chunk.
struct ChunkData {
  std::size_t first_row = 0;
  std::size_t rows = 0;
  std::size_t bytes = 0;
  const std::byte* images = nullptr;
  detail::PooledBuffer buffer;
  std::vector<std::int32_t> labels;
};
using ChunkPtr = std::shared_ptr<const ChunkData>;

// The progress of one logical rank through its epoch plan.
struct StreamState {
  int rank = 0;
  RankEpoch plan;
  std::size_t window = 0;                // the window of the last real position visited
  bool loaded = false;                   // `window`'s chunks are in Impl::held ...
  std::vector<const ChunkData*> chunks;  // ... and here, in the order of its blocks
};

// Where one column's sample comes from.
struct Source {
  const std::byte* image = nullptr;
  std::int32_t label = 0;
};

std::uint64_t fingerprint(const SamplerOptions& s, const LoaderOptions& l, int logical) {
  std::uint64_t h = 0x6c6f61646572ULL;
  for (std::uint64_t v :
       {static_cast<std::uint64_t>(s.mode), static_cast<std::uint64_t>(s.batch_size), s.seed,
        static_cast<std::uint64_t>(s.shuffle), static_cast<std::uint64_t>(s.drop_last),
        static_cast<std::uint64_t>(s.evaluation), static_cast<std::uint64_t>(logical),
        static_cast<std::uint64_t>(s.shuffle_chunks), static_cast<std::uint64_t>(l.cache_bytes)}) {
    h = detail::mix(h, v);
  }
  return h;
}

}  // namespace

struct ShardedLoader::Impl {
  H5Dataset dataset;
  DistributedSampler sampler;
  LoaderOptions options;
  std::vector<int> logical;

  // --- producer state: touched only by the producing thread (the background thread, or
  // the caller's thread when read_ahead == 0) ---
  std::vector<StreamState> streams;
  // Declared before `held` and `cache`, so destroyed after them: every chunk buffer has
  // gone back to the pool by the time it frees its regions.
  std::unique_ptr<detail::ChunkPool> pool;
  std::unordered_map<std::size_t, ChunkPtr> held;  // chunks of the current windows
  bool window_moved = false;  // a stream entered a new window since held was last trimmed
  std::unordered_map<std::size_t, ChunkPtr> cache;  // shard mode: kept across epochs
  std::vector<std::byte> row_cache;                 // global mode: every row, once it fits
  std::vector<std::int32_t> row_cache_labels;
  std::vector<bool> row_cached;
  std::vector<std::byte> scratch_images;  // global mode: one batch's fresh rows
  std::vector<std::int32_t> scratch_labels;
  std::vector<Source> batch_sources;  // the columns of the batch being made (reused)
  std::atomic<std::size_t> cached_bytes{0};

  // --- hand-over between the producer and next(), guarded by mutex ---
  // Each side sleeps on its own condition and is woken only when it can make progress in
  // bulk: the consumer when `consumer_wants` batches are ready, the producer (once the
  // queue was full) when half of it is free again. Waking a thread costs a futex call and a
  // context switch (~10 us of CPU each on a loaded virtual machine), and an epoch of small
  // batches is thousands of batches, so waking in bulk saves thousands of them.
  std::mutex mutex;
  std::condition_variable ready;  // the consumer waits here
  std::condition_variable space;  // the producer waits here (queue full, or idle)
  std::deque<Batch> queue;
  std::size_t consumer_wants = 0;  // > 0 while next() sleeps: batches it waits for
  bool producer_waiting = false;   // the producer sleeps until the queue has drained
  // Batches handed back by next(): the producer refills them, so that a batch's matrix is
  // not allocated (and page-faulted in) anew at every step.
  std::vector<Batch> spares;
  std::uint64_t generation = 0;  // bumped by each start_epoch(): older batches are stale
  std::uint64_t epoch = 0;
  std::exception_ptr error;
  bool stop = false;

  // --- consumer state (the caller's thread) ---
  bool started = false;
  std::size_t consumed = 0;

  std::thread worker;

  Impl(H5Dataset data, DistributedSampler plan, LoaderOptions opts, std::vector<int> played)
      : dataset(std::move(data)),
        sampler(std::move(plan)),
        options(opts),
        logical(std::move(played)) {}

  // Batches the consumer waits for at once (when it has to wait at all): a full read-ahead
  // queue. It only waits when the producer is the slower side, and then every wake-up is
  // pure overhead: a futex call on each side and two context switches (the woken consumer
  // preempts the producer on a busy machine), ~10-15 us of CPU on a virtual machine,
  // against ~30 us of work per batch of 64 uncompressed rows of 784 bytes. Waking once per
  // full queue instead of once per half queue (and notifying after unlocking, below) cut
  // the switches of a 2-rank epoch from ~1,450 voluntary + ~1,350 involuntary per rank to
  // ~400 + ~400 (read_ahead 4, bench/data_read). The consumer drains the queue at once when
  // woken; a consumer slower than the producer never waits, so this changes nothing there.
  [[nodiscard]] std::size_t wake_batches() const {
    return std::max<std::size_t>(1, options.read_ahead);
  }
  // The queue length at which a producer that found the queue full resumes: half of it
  // free, so that it works while the (then slower) consumer still has batches to take.
  [[nodiscard]] std::size_t resume_below() const {
    return options.read_ahead - std::max<std::size_t>(1, options.read_ahead / 2);
  }

  [[nodiscard]] bool global_cache_on() const {
    return dataset.size() * dataset.row_bytes() <= options.cache_bytes;
  }

  void prepare_epoch(std::uint64_t e) {
    streams.clear();
    held.clear();
    window_moved = false;
    for (int r : logical) streams.push_back({r, sampler.epoch(r, e), 0, false, {}});
  }

  // Shard mode: the chunk `block`, from the cache or read whole from the file.
  ChunkPtr load_block(std::size_t block) {
    if (auto it = cache.find(block); it != cache.end()) return it->second;
    auto chunk = std::make_shared<ChunkData>();
    chunk->first_row = block * sampler.block_rows();
    chunk->rows = sampler.block_size(block);
    chunk->bytes = chunk->rows * dataset.row_bytes();
    const std::size_t full = sampler.block_rows() * dataset.row_bytes();
    chunk->labels.resize(chunk->rows);
    // Exactly the chunk, never a row-by-row selection: viewed in place where the file
    // allows it (an unfiltered chunk: no copy at all), otherwise read whole - HDF5
    // decompresses it once, straight into a pooled buffer (an unfiltered chunk that cannot
    // be viewed is one direct chunk read, see read_rows).
    chunk->images = dataset.map_chunk(chunk->first_row, chunk->labels).data();
    if (chunk->images == nullptr) {
      if (!pool) pool = std::make_unique<detail::ChunkPool>(full);
      chunk->buffer = pool->acquire();
      chunk->images = chunk->buffer.get();
      dataset.read_rows(chunk->first_row, chunk->rows,
                        std::span<std::byte>(chunk->buffer.get(), chunk->bytes), chunk->labels);
    }
    const std::size_t bytes = full + chunk->labels.size() * sizeof(std::int32_t);
    if (cached_bytes.load() + bytes <= options.cache_bytes) {
      cache.emplace(block, chunk);
      cached_bytes += bytes;
    }
    return chunk;
  }

  // Loads the chunks of the stream's current window (those not held yet) and notes where
  // they are, so that each row's lookup is a scan of a few pointers, not a hash lookup.
  void load_window(StreamState& s) {
    s.chunks.clear();
    for (std::size_t block : s.plan.windows[s.window].blocks) {
      auto it = held.find(block);
      if (it == held.end()) it = held.emplace(block, load_block(block)).first;
      s.chunks.push_back(it->second.get());
    }
    s.loaded = true;
  }

  // Row `row` of the stream's current window.
  Source shard_source(const StreamState& s, std::uint64_t row, std::size_t row_bytes) const {
    const auto block = static_cast<std::size_t>(row / sampler.block_rows());
    const std::vector<std::size_t>& blocks = s.plan.windows[s.window].blocks;
    const auto at =
        static_cast<std::size_t>(std::find(blocks.begin(), blocks.end(), block) - blocks.begin());
    const ChunkData& chunk = *s.chunks.at(at);  // at() throws if the plan were inconsistent
    const std::size_t offset = static_cast<std::size_t>(row) - chunk.first_row;
    return {chunk.images + offset * row_bytes, chunk.labels[offset]};
  }

  // Keeps only the chunks of each stream's current window.
  void release_old_windows() {
    std::unordered_map<std::size_t, ChunkPtr> keep;
    for (const StreamState& s : streams) {
      if (s.plan.windows.empty()) continue;
      for (std::size_t block : s.plan.windows[s.window].blocks) {
        if (auto it = held.find(block); it != held.end()) keep.emplace(block, it->second);
      }
    }
    // A chunk no window and no cache holds any more gives its buffer back to the pool
    // when `keep` replaces `held` here.
    held.swap(keep);
  }

  // The columns of step `step` in shard mode: for each logical rank, its positions; the
  // window holding a position is loaded when first reached, and the chunks of windows
  // left behind are released at the start of the next batch, once the previous batch
  // has been copied out of them (so at most about two windows are ever in memory).
  void shard_sources(std::size_t step, std::vector<Source>& sources, Batch& batch) {
    // Only a stream that moved to a new window during the last batch leaves chunks behind.
    if (window_moved) release_old_windows();
    window_moved = false;
    const std::size_t b = sampler.batch_size();
    const std::size_t row_bytes = dataset.row_bytes();
    for (StreamState& s : streams) {
      const std::size_t end = std::min(s.plan.order.size(), (step + 1) * b);
      for (std::size_t p = step * b; p < end; ++p) {
        if (p < s.plan.real) {
          while (s.plan.windows[s.window].end <= p) {
            ++s.window;
            s.loaded = false;
            window_moved = true;
          }
        }  // padding positions repeat rows of the last window, which is the current one
        // Once per window, not per row: the chunks stay in `held` until the stream moves
        // on (release_old_windows keeps every stream's current window).
        if (!s.loaded) load_window(s);
        sources.push_back(shard_source(s, s.plan.order[p], row_bytes));
        batch.indices.push_back(s.plan.order[p]);
        if (p < s.plan.real) ++batch.real;
      }
    }
  }

  // The columns of step `step` in global mode: the batch's rows not yet cached are read
  // in one selection (sorted, runs of consecutive rows merged); rows read = rows used.
  void global_sources(std::size_t step, std::vector<Source>& sources, Batch& batch) {
    const std::size_t b = sampler.batch_size();
    for (const StreamState& s : streams) {
      const std::size_t end = std::min(s.plan.order.size(), (step + 1) * b);
      for (std::size_t p = step * b; p < end; ++p) {
        batch.indices.push_back(s.plan.order[p]);
        if (p < s.plan.real) ++batch.real;
      }
    }
    const bool caching = global_cache_on();
    if (caching && row_cached.empty()) {
      row_cache.resize(dataset.size() * dataset.row_bytes());
      row_cache_labels.resize(dataset.size());
      row_cached.assign(dataset.size(), false);
      cached_bytes = row_cache.size() + row_cache_labels.size() * sizeof(std::int32_t);
    }
    std::vector<std::uint64_t> wanted;
    for (std::uint64_t row : batch.indices) {
      if (!caching || !row_cached[row]) wanted.push_back(row);
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
    const std::size_t row_bytes = dataset.row_bytes();
    scratch_images.resize(wanted.size() * row_bytes);
    scratch_labels.resize(wanted.size());
    dataset.read_rows(ranges, scratch_images, scratch_labels);
    if (caching) {
      for (std::size_t i = 0; i < wanted.size(); ++i) {
        std::memcpy(row_cache.data() + wanted[i] * row_bytes, scratch_images.data() + i * row_bytes,
                    row_bytes);
        row_cache_labels[wanted[i]] = scratch_labels[i];
        row_cached[wanted[i]] = true;
      }
    }
    for (std::uint64_t row : batch.indices) {
      if (caching) {
        sources.push_back({row_cache.data() + row * row_bytes, row_cache_labels[row]});
      } else {
        const auto i = static_cast<std::size_t>(
            std::lower_bound(wanted.begin(), wanted.end(), row) - wanted.begin());
        sources.push_back({scratch_images.data() + i * row_bytes, scratch_labels[i]});
      }
    }
  }

  void make_batch(std::uint64_t e, std::size_t step, Batch& batch) {
    batch.indices.clear();
    batch.labels.clear();
    batch.real = 0;
    batch.epoch = e;
    batch.step = step;
    std::vector<Source>& sources = batch_sources;
    sources.clear();
    if (sampler.mode() == SamplingMode::Shard) {
      shard_sources(step, sources, batch);
    } else {
      global_sources(step, sources, batch);
    }
    // Loop invariants read once: these are calls into another translation unit, which the
    // compiler cannot hoist out of the loop by itself.
    const std::size_t d = dataset.features();
    const std::size_t row_bytes = dataset.row_bytes();
    const bool bytes_stored = dataset.element_type() == ElementType::UInt8;
    batch.x.resize(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(sources.size()));
    batch.labels.resize(sources.size());
    float* const x = batch.x.data();
    for (std::size_t c = 0; c < sources.size(); ++c) {
      // Shuffled rows are scattered over a window of several chunks, far larger than the
      // CPU caches: fetching the row two columns ahead hides most of the memory latency,
      // which otherwise dominates the copy.
      if (c + 2 < sources.size()) {
        const std::byte* ahead = sources[c + 2].image;
        for (std::size_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(ahead + line);
      }
      float* column = x + c * d;  // column-major: a column is contiguous
      if (bytes_stored) {
        detail::scale_bytes(reinterpret_cast<const std::uint8_t*>(sources[c].image), column, d);
      } else {
        std::memcpy(column, sources[c].image, d * sizeof(float));
      }
      batch.labels[c] = sources[c].label;
    }
  }

  // A batch handed back by next() (its storage is reused), or an empty one. The _locked
  // form expects `mutex` held.
  Batch take_spare_locked() {
    if (spares.empty()) return {};
    Batch spare = std::move(spares.back());
    spares.pop_back();
    return spare;
  }
  Batch take_spare() {
    std::lock_guard lock(mutex);
    return take_spare_locked();
  }

  // The background thread: for each generation (epoch request), plans the epoch and
  // produces its batches in order, at most read_ahead ahead of next(). It calls no MPI.
  void run() {
    std::uint64_t done = 0;
    for (;;) {
      std::uint64_t mine = 0;
      std::uint64_t e = 0;
      {
        std::unique_lock lock(mutex);
        space.wait(lock, [&] { return stop || generation != done; });
        if (stop) return;
        mine = generation;
        e = epoch;
      }
      try {
        prepare_epoch(e);
        Batch batch = take_spare();
        for (std::size_t step = 0; step < sampler.steps_per_epoch(); ++step) {
          make_batch(e, step, batch);
          bool wake = false;
          {
            std::unique_lock lock(mutex);
            if (queue.size() >= options.read_ahead) {
              producer_waiting = true;
              space.wait(lock, [&] {
                return stop || generation != mine || queue.size() <= resume_below();
              });
              producer_waiting = false;
            }
            if (stop) return;
            if (generation != mine) break;
            queue.push_back(std::move(batch));
            wake = consumer_wants > 0 && queue.size() >= consumer_wants;
            batch = take_spare_locked();  // one critical section per batch, not two
          }
          // Notified after unlocking: a consumer woken while the mutex is still held would
          // only block on it again (one more sleep and wake-up for nothing).
          if (wake) ready.notify_one();
        }
      } catch (...) {
        std::lock_guard lock(mutex);
        if (generation == mine) error = std::current_exception();
        ready.notify_one();
      }
      done = mine;
    }
  }
};

ShardedLoader::ShardedLoader(const Communicator& comm, H5Dataset dataset, SamplerOptions sampling,
                             LoaderOptions options) {
  const int p = comm.size();
  const int k = sampling.virtual_ranks > 0 ? sampling.virtual_ranks : p;
  // Local checks and planning, then one agreement: either every rank has a loader or
  // every rank throws the same Error. Mismatched options would make ranks run different
  // numbers of steps and hang in the trainer's collectives, so they are compared too.
  std::string error;
  std::unique_ptr<DistributedSampler> sampler;
  try {
    if (k % p != 0) {
      throw InvalidArgument(
          fmt::format("loader: virtual_ranks {} is not a multiple of the {} MPI ranks", k, p));
    }
    if (dataset.driver() == IoDriver::MpiIo && options.read_ahead > 0) {
      // The reader thread then calls MPI-IO while the trainer's threads may call MPI too.
      require_thread_level(ThreadLevel::Multiple,
                           "loader: MPI-IO reads on the read-ahead thread (read_ahead > 0)");
    }
    const SamplingMode mode =
        DistributedSampler::resolve(sampling.mode, dataset.size() * dataset.row_bytes(),
                                    options.cache_bytes, dataset.chunks(), k);
    sampler = std::make_unique<DistributedSampler>(dataset.size(), dataset.chunk_rows(), k, mode,
                                                   sampling);
  } catch (const Error& e) {
    error = fmt::format("'{}': {}", dataset.path(), e.cause());
  } catch (const std::exception& e) {
    error = fmt::format("'{}': {}", dataset.path(), e.what());
  }
  agree(comm, error);

  const std::uint64_t mine = fingerprint(sampling, options, k);
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  RINGDP_MPI_CHECK(PMPI_Allreduce(&mine, &low, 1, MPI_UINT64_T, MPI_MIN, comm.native()));
  RINGDP_MPI_CHECK(PMPI_Allreduce(&mine, &high, 1, MPI_UINT64_T, MPI_MAX, comm.native()));
  if (low != high) {
    throw Error(0, "loader: sampler or loader options differ between ranks", true);
  }

  std::vector<int> played;
  const int per = k / p;
  for (int v = comm.rank() * per; v < (comm.rank() + 1) * per; ++v) played.push_back(v);
  // Shard mode reads whole chunks only: without HDF5's chunk cache, HDF5 reads them
  // straight into the loader's buffers (one copy less, no cache allocation per chunk).
  if (sampler->mode() == SamplingMode::Shard) dataset.set_chunk_cache(0);
  impl_ =
      std::make_unique<Impl>(std::move(dataset), std::move(*sampler), options, std::move(played));
  if (options.read_ahead > 0) impl_->worker = std::thread([this] { impl_->run(); });
}

ShardedLoader::~ShardedLoader() {
  if (impl_ && impl_->worker.joinable()) {
    {
      std::lock_guard lock(impl_->mutex);
      impl_->stop = true;
    }
    impl_->space.notify_one();
    impl_->worker.join();
  }
}

void ShardedLoader::start_epoch(std::uint64_t epoch) {
  Impl& d = *impl_;
  d.started = true;
  d.consumed = 0;
  if (d.options.read_ahead == 0) {
    d.epoch = epoch;
    d.prepare_epoch(epoch);
    return;
  }
  {
    std::lock_guard lock(d.mutex);
    ++d.generation;
    d.epoch = epoch;
    d.queue.clear();
    d.error = nullptr;
  }
  d.space.notify_one();
}

bool ShardedLoader::next(Batch& batch) {
  Impl& d = *impl_;
  if (!d.started) throw InvalidArgument("loader: next() before start_epoch()");
  if (d.consumed == d.sampler.steps_per_epoch()) return false;
  if (d.options.read_ahead == 0) {
    d.make_batch(d.epoch, d.consumed, batch);
    ++d.consumed;
    return true;
  }
  std::unique_lock lock(d.mutex);
  if (d.queue.empty() && !d.error) {
    // The producer pushes every step of the epoch (or fails), so waiting for up to the
    // steps still to come always ends.
    d.consumer_wants = std::min(d.wake_batches(), d.sampler.steps_per_epoch() - d.consumed);
    d.ready.wait(lock, [&] { return d.queue.size() >= d.consumer_wants || d.error; });
    d.consumer_wants = 0;
  }
  // Batches made before a failure are still delivered; the failure comes after them.
  if (d.queue.empty()) std::rethrow_exception(d.error);
  std::swap(batch, d.queue.front());
  if (d.spares.size() < d.options.read_ahead) d.spares.push_back(std::move(d.queue.front()));
  d.queue.pop_front();
  ++d.consumed;
  const bool wake = d.producer_waiting && d.queue.size() <= d.resume_below();
  lock.unlock();
  // After unlocking, for the same reason as the producer's notification.
  if (wake) d.space.notify_one();
  return true;
}

std::size_t ShardedLoader::steps_per_epoch() const noexcept {
  return impl_->sampler.steps_per_epoch();
}
std::size_t ShardedLoader::batch_size() const noexcept {
  return impl_->sampler.batch_size() * impl_->logical.size();
}
std::size_t ShardedLoader::features() const noexcept { return impl_->dataset.features(); }
int ShardedLoader::classes() const noexcept { return impl_->dataset.classes(); }
const DistributedSampler& ShardedLoader::sampler() const noexcept { return impl_->sampler; }
const H5Dataset& ShardedLoader::dataset() const noexcept { return impl_->dataset; }
const std::vector<int>& ShardedLoader::logical_ranks() const noexcept { return impl_->logical; }
IoCounters ShardedLoader::counters() const noexcept { return impl_->dataset.counters(); }
std::size_t ShardedLoader::cached_bytes() const noexcept { return impl_->cached_bytes.load(); }

}  // namespace ringdp::data
