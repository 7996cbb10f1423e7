// GradientReducer: a fixed plan of fused reductions, run on a progress thread.
//
// Why the plan is fixed: every rank must run the same sequence of allreduces with the same
// counts, or the ranks deadlock (or, worse, match messages of different reductions). If
// fusion depended on what happened to be submitted when the progress thread woke up, two
// ranks with different timing would fuse differently. So the units (groups of consecutive
// buckets reduced together) are computed once from the bucket sizes and the options, the
// ranks agree on the sizes at construction (agree_equal), and the progress thread reduces
// unit 0, 1, ... strictly in order, each as soon as all of its buckets are submitted.
// Timing decides only WHEN a unit runs, never WHAT it is.
//
// Why the caller may not call MPI during a step: the reducer asks only for
// MPI_THREAD_SERIALIZED (the level Open MPI grants cheaply; MULTIPLE slows every call), which
// forbids two threads inside MPI at once. The mutex hand-off in submit()/wait_all() orders
// the caller's MPI calls before and after the progress thread's, which is what SERIALIZED
// requires.

#include "ringdp/collectives/gradient_reducer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "comm/wait.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/error.hpp"

namespace ringdp {
namespace {

// Default bucket size. The trainer also cuts buckets at every layer's end, so for the MLPs
// of this project the size only decides how a large layer is split, and all of a layer's
// buckets become ready at once. A sweep with bench/train_throughput (784-512-256-10, batch
// 64, 2 ranks; 256 KiB, 1 MiB, 4 MiB, overlap on and off, interleaved) on the development
// machine, shared with other builds at a load average of about 17 on 2 cores, showed no
// difference beyond the noise. 1 MiB keeps the per-reduction latency (microseconds) far
// below its transfer time while still handing the ring several segments to pipeline.
// Overridable with RINGDP_BUCKET_BYTES; re-measure on a quiet machine.
constexpr std::size_t kDefaultBucketBytes = std::size_t{1} << 20;

// Default fusion limit: below a few tens of kB an allreduce costs its latency (a few
// microseconds per message on shared memory), above it its bandwidth; fusing up to 64 kB
// turns many tiny reductions into one without delaying a large bucket behind small ones.
constexpr std::size_t kDefaultFusionBytes = std::size_t{64} << 10;

// FNV-1a over 64-bit words: a summary of the bucket layout the ranks compare.
std::uint64_t mix(std::uint64_t hash, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    hash ^= (value >> (8 * i)) & 0xffu;
    hash *= 1099511628211ull;
  }
  return hash;
}

// True when two non-empty buckets share memory.
bool overlapping(const std::vector<std::span<float>>& buckets) {
  std::vector<std::span<float>> sorted;
  for (const auto& b : buckets) {
    if (!b.empty()) sorted.push_back(b);
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return std::less<const float*>()(a.data(), b.data());
  });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (std::less<const float*>()(sorted[i].data(), sorted[i - 1].data() + sorted[i - 1].size())) {
      return true;
    }
  }
  return false;
}

// The layouts (bucket count, elements, hash of sizes and options) of rank 0 and of a rank
// that differs.
std::string describe_layouts(const Disagreement& d) {
  const bool same_totals = d.theirs[0] == d.reference[0] && d.theirs[1] == d.reference[1];
  return fmt::format(
      "GradientReducer: rank {} registered {} buckets of {} floats in total, rank 0 registered "
      "{} buckets of {} floats{}; every rank must register the same bucket sizes and options "
      "(ranks differing from rank 0: {})",
      d.rank, d.theirs[0], d.theirs[1], d.reference[0], d.reference[1],
      same_totals ? " (sizes or options differ)" : "", d.ranks_text());
}

}  // namespace

// RINGDP_BUCKET_BYTES and RINGDP_FUSION_BYTES come from the settings (a malformed value is
// reported when a Communicator is built, and leaves the default here).
std::size_t default_bucket_bytes() noexcept {
  const std::size_t set = read_settings().values.bucket_bytes;
  return set != 0 ? set : kDefaultBucketBytes;
}

std::size_t default_fusion_bytes() noexcept {
  return read_settings().values.fusion_bytes.value_or(kDefaultFusionBytes);
}

// Everything the caller's threads and the progress thread share, under one mutex.
struct GradientReducer::State {
  std::mutex mutex;
  std::condition_variable changed;   // any change: a submit, a unit done, shutdown
  std::vector<char> submitted;       // per bucket, in this step
  std::vector<char> reduced;         // per bucket, in this step
  std::vector<std::size_t> missing;  // per unit: buckets not yet submitted
  std::vector<BucketTiming> timings;
  std::size_t next_unit = 0;     // the unit the progress thread runs next
  std::int64_t stall_step = -1;  // the caller's step, for stall reports
  std::size_t prefix_next = 0;   // submit_prefix: first bucket not yet considered
  bool in_flight = false;
  // The caller is computing (a submit() since its last wait): the progress thread paces
  // its polls (ReducerOptions::pace_while_computing). Read by the progress thread's waits
  // without the mutex.
  std::atomic<bool> computing{false};
  bool busy = false;       // the progress thread is inside a reduction
  bool skip_rest = false;  // an MPI error: the communicator is unusable this step
  bool shutdown = false;
  std::exception_ptr error;
  std::thread thread;
};

GradientReducer::GradientReducer(const Communicator& comm, std::vector<std::span<float>> buckets,
                                 ReducerOptions options)
    : GradientReducer(comm.duplicate(), std::move(buckets), std::move(options)) {}

GradientReducer::GradientReducer(Communicator&& comm, std::vector<std::span<float>> buckets,
                                 ReducerOptions options)
    : comm_(std::move(comm)), buckets_(std::move(buckets)), options_(std::move(options)) {
  // Every rank has the same thread level, so every rank throws here or none does.
  require_thread_level(ThreadLevel::Serialized, "GradientReducer (progress thread)");
  if (options_.fusion_bytes == static_cast<std::size_t>(-1)) {
    options_.fusion_bytes = default_fusion_bytes();
  }
  agree_on_layout();
  plan_units();

  state_ = std::make_unique<State>();
  state_->submitted.assign(buckets_.size(), 0);
  state_->reduced.assign(buckets_.size(), 0);
  state_->timings.assign(buckets_.size(), BucketTiming{});
  state_->missing.resize(units_.size());
  for (std::size_t u = 0; u < units_.size(); ++u) state_->missing[u] = units_[u].count;
  state_->thread = std::thread([this] { run(); });
}

void GradientReducer::agree_on_layout() {
  // Overlapping buckets would be reduced twice (and raced on): refuse them. Local, but
  // agreed below so that every rank learns of it.
  std::optional<Failure> failure;
  if (overlapping(buckets_)) {
    failure = Failure{ErrorKind::InvalidArgument, "GradientReducer: buckets overlap in memory"};
  }
  // The ranks must agree on the plan: the bucket count, the elements and a hash of the
  // sizes and options, in the one reduction that also agrees on the overlap check. The
  // settings that decide Auto and the ring's segments (RINGDP_ALGORITHM, RINGDP_TUNING,
  // RINGDP_SEGMENT_BYTES) were agreed when the caller's Communicator was built, so the
  // progress thread resolves Auto per unit without communicating, alike on every rank.
  std::uint64_t hash = 1469598103934665603ull;
  std::uint64_t elements = 0;
  for (const auto& b : buckets_) {
    hash = mix(hash, b.size());
    elements += b.size();
  }
  hash = mix(hash, static_cast<std::uint64_t>(options_.op));
  hash = mix(hash, static_cast<std::uint64_t>(options_.algorithm));
  hash = mix(hash, options_.fusion_bytes);
  const std::int64_t layout[3] = {static_cast<std::int64_t>(buckets_.size()),
                                  static_cast<std::int64_t>(elements),
                                  static_cast<std::int64_t>(hash)};
  agree_equal(comm_, layout, describe_layouts, ErrorKind::InvalidArgument, failure);
}

void GradientReducer::plan_units() {
  // The fixed plan: greedy fusion of consecutive buckets while the unit fits fusion_bytes.
  unit_of_.resize(buckets_.size());
  std::size_t fusion_floats = 0;
  for (std::size_t i = 0; i < buckets_.size();) {
    ReductionUnit unit{
        .first = i, .count = 1, .bytes = buckets_[i].size_bytes(), .contiguous = true};
    const float* end = buckets_[i].data() + buckets_[i].size();
    for (++i; i < buckets_.size() && options_.fusion_bytes > 0 &&
              unit.bytes + buckets_[i].size_bytes() <= options_.fusion_bytes;
         ++i) {
      // Empty buckets never break contiguity; others must start where the last one ended.
      if (!buckets_[i].empty()) {
        if (unit.bytes > 0 && buckets_[i].data() != end) unit.contiguous = false;
        end = buckets_[i].data() + buckets_[i].size();
      }
      unit.bytes += buckets_[i].size_bytes();
      ++unit.count;
    }
    for (std::size_t b = unit.first; b < unit.first + unit.count; ++b) unit_of_[b] = units_.size();
    if (!unit.contiguous) fusion_floats = std::max(fusion_floats, unit.bytes / sizeof(float));
    units_.push_back(unit);
  }
  fusion_buffer_.resize(fusion_floats);
}

GradientReducer::~GradientReducer() {
  {
    std::lock_guard lock(state_->mutex);
    state_->shutdown = true;
  }
  state_->changed.notify_all();
  if (state_->thread.joinable()) state_->thread.join();
}

std::vector<std::span<float>> GradientReducer::split(std::span<float> arena,
                                                     std::size_t bucket_bytes,
                                                     std::span<const std::size_t> boundaries) {
  const std::size_t per_bucket = std::max<std::size_t>(1, bucket_bytes / sizeof(float));
  std::vector<std::span<float>> buckets;
  std::size_t begin = 0;
  auto next_boundary = boundaries.begin();
  while (begin < arena.size()) {
    while (next_boundary != boundaries.end() && *next_boundary <= begin) ++next_boundary;
    std::size_t end = std::min(arena.size(), begin + per_bucket);
    if (next_boundary != boundaries.end()) end = std::min(end, *next_boundary);
    buckets.push_back(arena.subspan(begin, end - begin));
    begin = end;
  }
  return buckets;
}

void GradientReducer::set_stall_step(std::int64_t step) {
  std::lock_guard lock(state_->mutex);
  state_->stall_step = step;
}

void GradientReducer::submit(std::size_t index) {
  if (index >= buckets_.size()) {
    throw InvalidArgument(fmt::format("GradientReducer::submit: bucket {} of {} does not exist",
                                      index, buckets_.size()));
  }
  {
    std::lock_guard lock(state_->mutex);
    if (state_->submitted[index] != 0) {
      throw InvalidArgument(fmt::format(
          "GradientReducer::submit: bucket {} was already submitted in this step", index));
    }
    state_->in_flight = true;
    state_->computing.store(true, std::memory_order_relaxed);
    state_->submitted[index] = 1;
    state_->timings[index].submitted = ReducerClock::now();
    --state_->missing[unit_of_[index]];
  }
  state_->changed.notify_all();
}

void GradientReducer::submit_prefix(std::size_t end) {
  if (buckets_.empty()) return;
  const float* base = buckets_.front().data();
  std::vector<std::size_t> ready;
  {
    std::lock_guard lock(state_->mutex);
    std::size_t& next = state_->prefix_next;
    while (next < buckets_.size()) {
      const auto& b = buckets_[next];
      const std::ptrdiff_t offset = b.data() - base;
      if (offset < 0) {
        throw InvalidArgument(
            "GradientReducer::submit_prefix: the buckets do not tile one arena in order");
      }
      if (static_cast<std::size_t>(offset) + b.size() > end) break;
      if (state_->submitted[next] == 0) ready.push_back(next);
      ++next;
    }
  }
  for (const std::size_t index : ready) submit(index);
}

void GradientReducer::wait(std::size_t index) {
  if (index >= buckets_.size()) {
    throw InvalidArgument(fmt::format("GradientReducer::wait: bucket {} of {} does not exist",
                                      index, buckets_.size()));
  }
  state_->computing.store(false, std::memory_order_relaxed);
  std::unique_lock lock(state_->mutex);
  // Stalled: the progress thread is idle and cannot go on without another submit.
  auto stalled = [&] {
    return !state_->busy &&
           (state_->next_unit == units_.size() || state_->missing[state_->next_unit] > 0);
  };
  state_->changed.wait(lock, [&] { return state_->reduced[index] != 0 || stalled(); });
  if (state_->reduced[index] == 0) {
    throw InvalidArgument(fmt::format(
        "GradientReducer::wait: bucket {} cannot be reduced until bucket(s) of reduction {} "
        "are submitted (reductions run in order)",
        index, state_->next_unit));
  }
}

void GradientReducer::wait_all() {
  state_->computing.store(false, std::memory_order_relaxed);
  std::unique_lock lock(state_->mutex);
  if (!state_->in_flight) return;
  // Wait until the progress thread has run every unit it can: all of them, or it stands
  // idle before a unit with a bucket that was never submitted.
  state_->changed.wait(lock, [&] {
    return state_->next_unit == units_.size() ||
           (!state_->busy && state_->missing[state_->next_unit] > 0);
  });
  std::exception_ptr error = std::exchange(state_->error, nullptr);
  if (!error && state_->next_unit < units_.size()) {
    const auto first_missing =
        static_cast<std::size_t>(std::find(state_->submitted.begin(), state_->submitted.end(), 0) -
                                 state_->submitted.begin());
    error = std::make_exception_ptr(InvalidArgument(fmt::format(
        "GradientReducer::wait_all: bucket {} was not submitted in this step", first_missing)));
  }
  // End the step: the progress thread is idle (not busy), so the state can be reset.
  last_timings_ = state_->timings;
  std::fill(state_->submitted.begin(), state_->submitted.end(), 0);
  std::fill(state_->reduced.begin(), state_->reduced.end(), 0);
  for (std::size_t u = 0; u < units_.size(); ++u) state_->missing[u] = units_[u].count;
  state_->next_unit = 0;
  state_->prefix_next = 0;
  state_->in_flight = false;
  state_->skip_rest = false;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

void GradientReducer::run() noexcept {
  const detail::PacedWaits pacing(options_.pace_while_computing ? &state_->computing : nullptr);
  std::unique_lock lock(state_->mutex);
  for (;;) {
    state_->changed.wait(lock, [&] {
      return state_->shutdown ||
             (state_->next_unit < units_.size() && state_->missing[state_->next_unit] == 0);
    });
    if (state_->shutdown) return;
    const std::size_t u = state_->next_unit;
    const bool skip = state_->skip_rest;
    const std::int64_t step = state_->stall_step;
    state_->busy = true;
    lock.unlock();
    // What a stall report of this reduction names: the caller's step and these buckets.
    comm_.set_stall_context({.step = step,
                             .first_bucket = static_cast<std::int64_t>(units_[u].first),
                             .buckets = static_cast<std::int64_t>(units_[u].count)});

    const ReducerClock::time_point started = ReducerClock::now();
    std::exception_ptr error;
    bool mpi_failed = false;
    Algorithm algorithm = Algorithm::Auto;
    if (!skip) {
      try {
        algorithm = resolve_algorithm(options_.algorithm, units_[u].bytes, comm_.size(),
                                      comm_.node_layout());
        reduce_unit(u, algorithm);
      } catch (const MpiError&) {
        // The communicator may be unusable: do not start further collectives this step.
        error = std::current_exception();
        mpi_failed = true;
      } catch (...) {
        // A failure every rank sees alike (an unknown algorithm, a check of the averaged
        // bits in after_reduce): go on with the next units, so that ranks stay in step.
        error = std::current_exception();
      }
    }
    const ReducerClock::time_point finished = ReducerClock::now();

    lock.lock();
    for (std::size_t b = units_[u].first; b < units_[u].first + units_[u].count; ++b) {
      BucketTiming& t = state_->timings[b];
      t.started = started;
      t.finished = finished;
      t.unit = u;
      t.unit_bytes = units_[u].bytes;
      t.algorithm = algorithm;
      state_->reduced[b] = 1;
    }
    if (error && !state_->error) state_->error = error;
    if (mpi_failed) state_->skip_rest = true;
    state_->busy = false;
    ++state_->next_unit;
    state_->changed.notify_all();
  }
}

void GradientReducer::reduce_unit(std::size_t u, Algorithm algorithm) {
  const ReductionUnit& unit = units_[u];
  if (unit.bytes == 0) return;  // same on every rank: nothing to reduce
  const std::size_t floats = unit.bytes / sizeof(float);
  std::span<float> range;
  if (unit.contiguous) {
    // Adjacent buckets: one allreduce over the whole range, in place, no copy.
    const auto first =
        std::find_if(buckets_.begin() + static_cast<std::ptrdiff_t>(unit.first),
                     buckets_.begin() + static_cast<std::ptrdiff_t>(unit.first + unit.count),
                     [](const auto& b) { return !b.empty(); });
    range = std::span<float>(first->data(), floats);
  } else {
    // Scattered buckets: pack them into the fusion buffer (owned by this thread only while
    // a unit runs), reduce once, unpack.
    std::size_t at = 0;
    for (std::size_t b = unit.first; b < unit.first + unit.count; ++b) {
      std::memcpy(fusion_buffer_.data() + at, buckets_[b].data(), buckets_[b].size_bytes());
      at += buckets_[b].size();
    }
    range = std::span<float>(fusion_buffer_.data(), floats);
  }
  allreduce<float>(comm_, range, options_.op, algorithm);
  if (!unit.contiguous) {
    std::size_t at = 0;
    for (std::size_t b = unit.first; b < unit.first + unit.count; ++b) {
      std::memcpy(buckets_[b].data(), fusion_buffer_.data() + at, buckets_[b].size_bytes());
      at += buckets_[b].size();
    }
  }
  if (options_.after_reduce) options_.after_reduce(range);
}

}  // namespace ringdp
