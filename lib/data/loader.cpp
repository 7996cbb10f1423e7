// ShardedLoader: the collective construction (local checks and options agreed across the
// ranks) and the read-ahead queue between the producer thread and next(). The readers,
// which make the batches, are in batch_maker.cpp.

#include "ringdp/data/loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "data/batch_maker.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"

namespace ringdp::data {
namespace {

// The options that must be the same on every rank (they decide the number of steps and
// which rows each rank reads), by name, for the message that names a rank that differs.
constexpr std::array<const char*, 9> kOptionNames = {
    "sampling mode", "batch_size",    "seed",           "shuffle",    "drop_last",
    "evaluation",    "logical ranks", "shuffle_chunks", "cache_bytes"};

std::array<std::int64_t, kOptionNames.size()> option_values(const SamplerOptions& s,
                                                            const LoaderOptions& l, int logical) {
  return {static_cast<std::int64_t>(s.mode),       static_cast<std::int64_t>(s.batch_size),
          static_cast<std::int64_t>(s.seed),       static_cast<std::int64_t>(s.shuffle),
          static_cast<std::int64_t>(s.drop_last),  static_cast<std::int64_t>(s.evaluation),
          static_cast<std::int64_t>(logical),      static_cast<std::int64_t>(s.shuffle_chunks),
          static_cast<std::int64_t>(l.cache_bytes)};
}

std::string option_text(std::size_t option, std::int64_t value) {
  switch (option) {
    case 0:
      return to_string(static_cast<SamplingMode>(value));
    case 2:
      return fmt::format("{}", static_cast<std::uint64_t>(value));
    case 3:
    case 4:
    case 5:
      return value != 0 ? "true" : "false";
    default:
      return fmt::format("{}", value);
  }
}

// "loader: options differ between ranks: batch_size is 7 on rank 2 but 6 on rank 0".
std::string describe_options(const Disagreement& d) {
  std::size_t i = 0;
  while (i + 1 < d.reference.size() && d.theirs[i] == d.reference[i]) ++i;
  return fmt::format("loader: options differ between ranks: {} is {} on rank {} but {} on rank 0{}",
                     kOptionNames[i], option_text(i, d.theirs[i]), d.rank,
                     option_text(i, d.reference[i]),
                     d.ranks.size() > 1 ? fmt::format(" (ranks {} differ)", d.ranks_text()) : "");
}

// The local checks of the options against this rank's MPI, and the plan of the epochs.
DistributedSampler plan_sampling(const Communicator& comm, const H5Dataset& dataset,
                                 const SamplerOptions& sampling, const LoaderOptions& options,
                                 int k) {
  const int p = comm.size();
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
  return {dataset.size(), dataset.chunk_rows(), k, mode, sampling};
}

// This rank's real count of every step, from its logical ranks' shares: logical rank l's
// step s covers its positions [s b, (s+1) b), of which those below its real count are real.
std::vector<std::size_t> real_counts(const DistributedSampler& sampler,
                                     const std::vector<int>& logical) {
  const std::size_t b = sampler.batch_size();
  std::vector<std::size_t> real(sampler.steps_per_epoch(), 0);
  for (const int r : logical) {
    const RankShare share = sampler.share(r);
    for (std::size_t s = 0; s < real.size() && share.real > s * b; ++s) {
      real[s] += std::min(share.real - s * b, b);
    }
  }
  return real;
}

}  // namespace

struct ShardedLoader::Impl {
  // --- producer state: the readers, touched only by the producing thread (the background
  // thread, or the caller's thread when read_ahead == 0) ---
  detail::BatchMaker maker;
  // This rank's real count of every step of an epoch (the same every epoch).
  std::vector<std::size_t> real_per_step;

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
      : maker(std::move(data), std::move(plan), opts, std::move(played)),
        real_per_step(real_counts(maker.sampler(), maker.logical())) {}

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
    return std::max<std::size_t>(1, maker.options().read_ahead);
  }
  // The queue length at which a producer that found the queue full resumes: half of it
  // free, so that it works while the (then slower) consumer still has batches to take.
  [[nodiscard]] std::size_t resume_below() const {
    const std::size_t depth = maker.options().read_ahead;
    return depth - std::max<std::size_t>(1, depth / 2);
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
        maker.prepare_epoch(e);
        Batch batch = take_spare();
        for (std::size_t step = 0; step < maker.sampler().steps_per_epoch(); ++step) {
          maker.make_batch(e, step, batch);
          bool wake = false;
          {
            std::unique_lock lock(mutex);
            if (queue.size() >= maker.options().read_ahead) {
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
  // every rank throws the same Error (of the failing rank's class). Mismatched options
  // would make ranks run different numbers of steps and hang in the trainer's
  // collectives, so the same reduction compares them and names the ranks that differ.
  std::optional<Failure> failure;
  std::optional<DistributedSampler> sampler;
  try {
    sampler.emplace(plan_sampling(comm, dataset, sampling, options, k));
  } catch (const std::exception&) {
    failure = current_failure();
    failure->cause = fmt::format("'{}': {}", dataset.path(), failure->cause);
  }
  agree_equal(comm, option_values(sampling, options, k), describe_options, ErrorKind::Mismatch,
              failure);

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
  if (d.maker.options().read_ahead == 0) {
    d.epoch = epoch;
    d.maker.prepare_epoch(epoch);
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
  if (d.consumed == d.maker.sampler().steps_per_epoch()) return false;
  if (d.maker.options().read_ahead == 0) {
    d.maker.make_batch(d.epoch, d.consumed, batch);
    ++d.consumed;
    return true;
  }
  std::unique_lock lock(d.mutex);
  if (d.queue.empty() && !d.error) {
    // The producer pushes every step of the epoch (or fails), so waiting for up to the
    // steps still to come always ends.
    d.consumer_wants = std::min(d.wake_batches(), d.maker.sampler().steps_per_epoch() - d.consumed);
    d.ready.wait(lock, [&] { return d.queue.size() >= d.consumer_wants || d.error; });
    d.consumer_wants = 0;
  }
  // Batches made before a failure are still delivered; the failure comes after them.
  if (d.queue.empty()) std::rethrow_exception(d.error);
  std::swap(batch, d.queue.front());
  if (d.spares.size() < d.maker.options().read_ahead)
    d.spares.push_back(std::move(d.queue.front()));
  d.queue.pop_front();
  ++d.consumed;
  const bool wake = d.producer_waiting && d.queue.size() <= d.resume_below();
  lock.unlock();
  // After unlocking, for the same reason as the producer's notification.
  if (wake) d.space.notify_one();
  return true;
}

std::size_t ShardedLoader::steps_per_epoch() const noexcept {
  return impl_->maker.sampler().steps_per_epoch();
}
std::size_t ShardedLoader::batch_size() const noexcept {
  return impl_->maker.sampler().batch_size() * impl_->maker.logical().size();
}
std::size_t ShardedLoader::features() const noexcept { return impl_->maker.dataset().features(); }
int ShardedLoader::classes() const noexcept { return impl_->maker.dataset().classes(); }
const DistributedSampler& ShardedLoader::sampler() const noexcept { return impl_->maker.sampler(); }
const H5Dataset& ShardedLoader::dataset() const noexcept { return impl_->maker.dataset(); }
const std::vector<int>& ShardedLoader::logical_ranks() const noexcept {
  return impl_->maker.logical();
}
const std::vector<std::size_t>& ShardedLoader::real_per_step() const noexcept {
  return impl_->real_per_step;
}
IoCounters ShardedLoader::counters() const noexcept { return impl_->maker.dataset().counters(); }
std::size_t ShardedLoader::cached_bytes() const noexcept { return impl_->maker.cached_bytes(); }

}  // namespace ringdp::data
