#pragma once
/// \file
/// GradientReducer: overlapped, non-blocking averaging of several float buffers.
///
/// A caller registers its buffers ("buckets") once, then each step hands them over with
/// submit() as soon as each is final and later calls wait_all(). A progress thread reduces
/// the submitted buckets (Average by default) with the chosen allreduce algorithm while
/// the caller goes on computing, e.g. the rest of a backward pass. Small consecutive
/// buckets are fused into one reduction. Nothing here knows of models: a training loop
/// and an HPC code averaging a few fields use it the same way.
///
/// \code
///   ringdp::GradientReducer reducer(comm, ringdp::GradientReducer::split(arena, bytes));
///   for (...) {
///     // compute; as the prefix [0, end) of the arena becomes final:
///     reducer.submit_prefix(end);
///     reducer.wait_all();  // every bucket now holds the average over all ranks
///   }
/// \endcode
///
/// Threads and MPI: the reducer needs MPI_THREAD_SERIALIZED (checked at construction,
/// with a clear Error otherwise). Between the first submit() of a step and the return of
/// wait_all() ONLY the progress thread calls MPI; the caller must not call MPI (on any
/// communicator) from its own threads during that window. Outside it the caller may use
/// MPI freely. The reducer communicates on its own duplicate of the caller's communicator.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "ringdp/types.hpp"
#include "ringdp/comm/communicator.hpp"

namespace ringdp {

/// Clock of the reducer's timestamps (steady, system-wide on one host).
using ReducerClock = std::chrono::steady_clock;

/// Default bucket size in bytes: RINGDP_BUCKET_BYTES when set, otherwise a value measured
/// on the development machine (see gradient_reducer.cpp).
[[nodiscard]] std::size_t default_bucket_bytes() noexcept;

/// Default fusion limit in bytes: RINGDP_FUSION_BYTES when set (0: no fusion), otherwise
/// a measured value (see gradient_reducer.cpp).
[[nodiscard]] std::size_t default_fusion_bytes() noexcept;

/// Options of a GradientReducer; pass the same values on every rank.
struct ReducerOptions {
  /// Allreduce algorithm; Auto resolves per reduction from its byte size (and
  /// RINGDP_ALGORITHM), identically on every rank.
  Algorithm algorithm = Algorithm::Auto;
  /// The reduction; Average for gradients.
  ReduceOp op = ReduceOp::Average;
  /// Consecutive buckets (in index order) are fused into one reduction while their total
  /// stays at most this many bytes; 0 turns fusion off. SIZE_MAX = default_fusion_bytes().
  std::size_t fusion_bytes = static_cast<std::size_t>(-1);
  /// Called on the progress thread right after each reduction with the reduced elements
  /// (the fused range, or one bucket), before they are marked done. The place for a
  /// check of the averaged values (e.g. non-finite): the reduced bits are identical on
  /// every rank, so a check of them decides the same everywhere. An exception thrown
  /// here is carried to wait_all(). Must not call MPI.
  std::function<void(std::span<const float> reduced)> after_reduce = {};
  /// While the caller computes (from a submit() until it calls wait() or wait_all()), the
  /// progress thread polls MPI gently, sleeping briefly between polls, so that the
  /// computation keeps its core; while the caller waits, it polls at full speed. Right
  /// when ranks have no spare core for the progress thread; false: always full speed.
  bool pace_while_computing = true;
};

/// What happened to one bucket in the last completed step (times on ReducerClock).
struct BucketTiming {
  ReducerClock::time_point submitted{};   ///< when submit() handed it over
  ReducerClock::time_point started{};     ///< when its reduction began on the progress thread
  ReducerClock::time_point finished{};    ///< when its reduction (and after_reduce) ended
  std::size_t unit = 0;                   ///< index of the reduction (fusion unit) it was in
  std::size_t unit_bytes = 0;             ///< bytes reduced by that unit
  Algorithm algorithm = Algorithm::Auto;  ///< algorithm the unit ran (never Auto)
};

/// One reduction of the fixed plan: buckets [first, first + count) reduced together.
struct ReductionUnit {
  std::size_t first = 0;
  std::size_t count = 0;
  std::size_t bytes = 0;
  /// True when the buckets are adjacent in memory and are reduced in place as one range;
  /// false when they are copied through a fusion buffer.
  bool contiguous = true;
};

/// Overlapped averaging of a fixed set of float buffers over a communicator.
///
/// The plan (which buckets are reduced together, in which order) is fixed at construction
/// from the bucket sizes and options alone, so it is the same on every rank whatever the
/// timing of submit(): units are reduced strictly in index order, each as soon as all its
/// buckets are submitted. Results are bit-identical on every rank.
///
/// submit(), submit_prefix(), wait() and wait_all() are for the caller's threads (they
/// lock); the constructor and destructor are for one thread. Move-free, copy-free.
class GradientReducer {
 public:
  /// Collective over `comm` (duplicates it, then agrees that every rank registered the
  /// same bucket sizes and options: otherwise every rank throws the same InvalidArgument,
  /// naming the ranks that differ). Throws Error when MPI's thread level is below
  /// MPI_THREAD_SERIALIZED, and InvalidArgument on every rank when buckets overlap on one. The
  /// buffers must stay valid and must not move while the reducer lives; their contents may change
  /// between steps.
  GradientReducer(const Communicator& comm, std::vector<std::span<float>> buckets,
                  ReducerOptions options = {});
  /// The same on `comm` itself, which the reducer takes (no duplicate): for a caller that
  /// put the buckets in a SharedBuffer of that communicator, so that the node-local
  /// algorithms find them in its window and copy nothing in. Nothing else may use `comm`
  /// while the reducer has it.
  GradientReducer(Communicator&& comm, std::vector<std::span<float>> buckets,
                  ReducerOptions options = {});
  /// Stops the progress thread. Call wait_all() first: a step still in flight is left
  /// unfinished (its remaining reductions are not started), which would leave other ranks
  /// waiting. Never throws.
  ~GradientReducer();

  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;
  GradientReducer(GradientReducer&&) = delete;
  GradientReducer& operator=(GradientReducer&&) = delete;

  /// Cuts `arena` into consecutive buckets of at most `bucket_bytes` (rounded down to
  /// whole floats, at least one), in order from offset 0. When `boundaries` (element
  /// offsets, increasing) are given, a bucket also ends at each of them, so that a
  /// bucket never waits for data beyond the next boundary (e.g. a layer's end).
  [[nodiscard]] static std::vector<std::span<float>> split(
      std::span<float> arena, std::size_t bucket_bytes,
      std::span<const std::size_t> boundaries = {});

  /// Hands bucket `index` over for reduction; it must not be written until wait() or
  /// wait_all() returns. Starts a step if none is in flight. Throws InvalidArgument for
  /// an unknown index or a bucket already submitted in this step.
  void submit(std::size_t index);

  /// For buckets that tile one arena in index order (as split() makes): submits every
  /// not yet submitted bucket that ends at or before element `end` of the arena that
  /// bucket 0 starts. Lets a backward pass report "the prefix [0, end) is final".
  void submit_prefix(std::size_t end);

  /// Blocks until bucket `index` is reduced (or its reduction failed). Does not end the
  /// step. Throws InvalidArgument when it cannot happen: the bucket, or a bucket of an
  /// earlier reduction, is not submitted (reductions run in plan order).
  void wait(std::size_t index);

  /// Blocks until every bucket is reduced, ends the step and makes its timings available.
  /// Rethrows the first exception raised on the progress thread during the step (an MPI
  /// error, an unknown algorithm, or from after_reduce); the step is then over all the
  /// same and the reducer can be used again. Throws InvalidArgument, after the reductions
  /// that could run have run, when some bucket was never submitted. A no-op when no step
  /// is in flight.
  void wait_all();

  /// Names the caller's step in stall reports of the reductions that follow ("allreduce
  /// #812 (step 57, buckets 2-3)"; see ringdp/comm/stall.hpp); -1 for none. The buckets
  /// are filled in by the reducer. For the caller's threads; local.
  void set_stall_step(std::int64_t step);

  /// Number of buckets.
  [[nodiscard]] std::size_t size() const noexcept { return buckets_.size(); }
  /// The buckets, as registered.
  [[nodiscard]] const std::vector<std::span<float>>& buckets() const noexcept { return buckets_; }
  /// The fixed reduction plan.
  [[nodiscard]] const std::vector<ReductionUnit>& units() const noexcept { return units_; }
  /// The options in force (fusion_bytes resolved).
  [[nodiscard]] const ReducerOptions& options() const noexcept { return options_; }
  /// Per bucket, the timings of the last step completed by wait_all(). Not thread-safe
  /// against a concurrent wait_all().
  [[nodiscard]] const std::vector<BucketTiming>& timings() const noexcept { return last_timings_; }

 private:
  struct State;
  void agree_on_layout();
  void plan_units();
  void run() noexcept;
  void reduce_unit(std::size_t unit, Algorithm algorithm);

  Communicator comm_;
  std::vector<std::span<float>> buckets_;
  ReducerOptions options_;
  std::vector<ReductionUnit> units_;
  std::vector<std::size_t> unit_of_;  // bucket -> unit
  std::vector<float> fusion_buffer_;  // for non-contiguous units
  std::vector<BucketTiming> last_timings_;
  std::unique_ptr<State> state_;
};

}  // namespace ringdp
