#include "ringdp/data/loader.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "data/random.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/detail/mpi_check.hpp"

namespace ringdp::data {
namespace {

// One chunk (block) of rows as stored: the unit of reading and of caching in shard mode.
// Its buffer is allocated uninitialised and recycled (see Impl::spare_buffers): a fresh
// zero-filled buffer per chunk costs a memset and a page fault per 4 KiB, which on
// uncompressed files takes longer than the read itself.
struct ChunkData {
  std::size_t first_row = 0;
  std::size_t rows = 0;
  std::size_t bytes = 0;
  std::unique_ptr<std::byte[]> images;
  std::vector<std::int32_t> labels;
};
using ChunkPtr = std::shared_ptr<const ChunkData>;

// The progress of one logical rank through its epoch plan.
struct StreamState {
  int rank = 0;
  RankEpoch plan;
  std::size_t window = 0;  // the window of the last real position visited
};

// Where one column's sample comes from.
struct Source {
  const std::byte* image = nullptr;
  std::int32_t label = 0;
};

// v / 255.0f for every byte v: uint8 samples scaled to [0, 1].
const std::array<float, 256> kByteToUnit = [] {
  std::array<float, 256> table{};
  for (std::size_t v = 0; v < table.size(); ++v) table[v] = static_cast<float>(v) / 255.0f;
  return table;
}();

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
  std::unordered_map<std::size_t, ChunkPtr> held;           // chunks of the current windows
  std::unordered_map<std::size_t, ChunkPtr> cache;          // shard mode: kept across epochs
  std::vector<std::unique_ptr<std::byte[]>> spare_buffers;  // full-chunk buffers to reuse
  std::vector<std::byte> row_cache;                         // global mode: every row, once it fits
  std::vector<std::int32_t> row_cache_labels;
  std::vector<bool> row_cached;
  std::vector<std::byte> scratch_images;  // global mode: one batch's fresh rows
  std::vector<std::int32_t> scratch_labels;
  std::atomic<std::size_t> cached_bytes{0};

  // --- hand-over between the producer and next(), guarded by mutex ---
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Batch> queue;
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

  [[nodiscard]] bool global_cache_on() const {
    return dataset.size() * dataset.row_bytes() <= options.cache_bytes;
  }

  void prepare_epoch(std::uint64_t e) {
    streams.clear();
    held.clear();
    for (int r : logical) streams.push_back({r, sampler.epoch(r, e), 0});
  }

  // Shard mode: the chunk `block`, from the cache or read whole from the file.
  ChunkPtr load_block(std::size_t block) {
    if (auto it = cache.find(block); it != cache.end()) return it->second;
    auto chunk = std::make_shared<ChunkData>();
    chunk->first_row = block * sampler.block_rows();
    chunk->rows = sampler.block_size(block);
    chunk->bytes = chunk->rows * dataset.row_bytes();
    const std::size_t full = sampler.block_rows() * dataset.row_bytes();
    if (!spare_buffers.empty()) {
      chunk->images = std::move(spare_buffers.back());
      spare_buffers.pop_back();
    } else {
      chunk->images = std::make_unique_for_overwrite<std::byte[]>(full);
    }
    chunk->labels.resize(chunk->rows);
    // One hyperslab covering exactly the chunk: HDF5 decompresses it once, straight into
    // this buffer; never a row-by-row selection.
    dataset.read_rows(chunk->first_row, chunk->rows,
                      std::span<std::byte>(chunk->images.get(), chunk->bytes), chunk->labels);
    const std::size_t bytes = full + chunk->labels.size() * sizeof(std::int32_t);
    if (cached_bytes.load() + bytes <= options.cache_bytes) {
      cache.emplace(block, chunk);
      cached_bytes += bytes;
    }
    return chunk;
  }

  void load_window(const Window& window) {
    for (std::size_t block : window.blocks) {
      if (!held.contains(block)) held.emplace(block, load_block(block));
    }
  }

  Source shard_source(std::uint64_t row) const {
    const ChunkData& chunk = *held.at(static_cast<std::size_t>(row / sampler.block_rows()));
    const std::size_t offset = static_cast<std::size_t>(row) - chunk.first_row;
    return {chunk.images.get() + offset * dataset.row_bytes(), chunk.labels[offset]};
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
    // A chunk no window and no cache holds any more gives its buffer back for reuse.
    for (auto& [block, chunk] : held) {
      if (!keep.contains(block) && chunk.use_count() == 1 && spare_buffers.size() < 64) {
        spare_buffers.push_back(std::move(const_cast<ChunkData&>(*chunk).images));
      }
    }
    held.swap(keep);
  }

  // The columns of step `step` in shard mode: for each logical rank, its positions; the
  // window holding a position is loaded when first reached, and the chunks of windows
  // left behind are released at the start of the next batch, once the previous batch
  // has been copied out of them (so at most about two windows are ever in memory).
  void shard_sources(std::size_t step, std::vector<Source>& sources, Batch& batch) {
    release_old_windows();
    const std::size_t b = sampler.batch_size();
    for (StreamState& s : streams) {
      const std::size_t end = std::min(s.plan.order.size(), (step + 1) * b);
      for (std::size_t p = step * b; p < end; ++p) {
        if (p < s.plan.real) {
          while (s.plan.windows[s.window].end <= p) ++s.window;
        }  // padding positions repeat rows of the last window, which is the current one
        load_window(s.plan.windows[s.window]);
        sources.push_back(shard_source(s.plan.order[p]));
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
    std::vector<Source> sources;
    if (sampler.mode() == SamplingMode::Shard) {
      shard_sources(step, sources, batch);
    } else {
      global_sources(step, sources, batch);
    }
    const std::size_t d = dataset.features();
    batch.x.resize(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(sources.size()));
    batch.labels.resize(sources.size());
    const std::size_t row_bytes = dataset.row_bytes();
    for (std::size_t c = 0; c < sources.size(); ++c) {
      // Shuffled rows are scattered over a window of several chunks, far larger than the
      // CPU caches: fetching the row two columns ahead hides most of the memory latency,
      // which otherwise dominates the copy.
      if (c + 2 < sources.size()) {
        const std::byte* ahead = sources[c + 2].image;
        for (std::size_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(ahead + line);
      }
      float* column = batch.x.data() + c * d;  // column-major: a column is contiguous
      if (dataset.element_type() == ElementType::UInt8) {
        // A table of the 256 quotients v / 255.0f: the same bits as dividing, without a
        // division and an int-to-float conversion per value (the loop's main cost).
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(sources[c].image);
        for (std::size_t i = 0; i < d; ++i) column[i] = kByteToUnit[bytes[i]];
      } else {
        std::memcpy(column, sources[c].image, d * sizeof(float));
      }
      batch.labels[c] = sources[c].label;
    }
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
        changed.wait(lock, [&] { return stop || generation != done; });
        if (stop) return;
        mine = generation;
        e = epoch;
      }
      try {
        prepare_epoch(e);
        for (std::size_t step = 0; step < sampler.steps_per_epoch(); ++step) {
          Batch batch;
          {
            std::lock_guard lock(mutex);
            if (!spares.empty()) {
              batch = std::move(spares.back());
              spares.pop_back();
            }
          }
          make_batch(e, step, batch);
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] {
            return stop || generation != mine || queue.size() < options.read_ahead;
          });
          if (stop) return;
          if (generation != mine) break;
          queue.push_back(std::move(batch));
          changed.notify_all();
        }
      } catch (...) {
        std::lock_guard lock(mutex);
        if (generation == mine) error = std::current_exception();
        changed.notify_all();
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
    impl_->changed.notify_all();
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
  d.changed.notify_all();
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
  d.changed.wait(lock, [&] { return !d.queue.empty() || d.error; });
  if (d.queue.empty()) std::rethrow_exception(d.error);
  std::swap(batch, d.queue.front());
  if (d.spares.size() < d.options.read_ahead) d.spares.push_back(std::move(d.queue.front()));
  d.queue.pop_front();
  ++d.consumed;
  d.changed.notify_all();
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
