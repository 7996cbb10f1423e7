// The data-parallel trainer: construction, epochs and their agreement, evaluation. One
// step's parts are in trainer_step.cpp, the trainer's checkpoint state in
// trainer_checkpoint.cpp.

#include "ringdp/train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <span>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "train/finite_scan.hpp"
#include "train/shared_gradients.hpp"
#include "train/step_sums.hpp"
#include "train/timeline_recorder.hpp"

namespace ringdp::train {
namespace {

double seconds_between(ReducerClock::time_point a, ReducerClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::uint64_t fnv1a(std::span<const float> data) {
  std::uint64_t hash = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  for (std::size_t i = 0; i < data.size_bytes(); ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

// Bucket boundaries at every layer's end in the arena, in increasing order.
std::vector<std::size_t> layer_ends(const nn::Sequential<float>& model) {
  std::vector<std::size_t> ends;
  for (std::size_t i = model.layer_count(); i-- > 0;) {
    const nn::ArenaRange r = model.layer_range(i);
    if (r.size > 0) ends.push_back(r.end());
  }
  std::sort(ends.begin(), ends.end());
  return ends;
}

// The exception being handled, as a Failure whose cause starts with `context`.
Failure failure_in(const std::string& context) {
  Failure f = current_failure();
  f.cause = fmt::format("{}: {}", context, f.cause);
  return f;
}

// Fetches the next batch; a failure (of the failing rank's error class) is returned
// instead of thrown, to be agreed on by every rank.
std::optional<Failure> fetch(BatchSource& source, Batch& batch, std::int64_t step,
                             std::int64_t steps) {
  try {
    if (source.next(batch)) return std::nullopt;
    return Failure{ErrorKind::Generic, fmt::format("the batch source ended after {} of {} steps "
                                                   "of the epoch",
                                                   step, steps)};
  } catch (const std::exception&) {
    return failure_in(fmt::format("batch {} of the epoch", step));
  }
}

// "rank 2" or "ranks 1,3".
std::string ranks_phrase(const Disagreement& d) {
  return fmt::format("rank{} {}", d.ranks.size() > 1 ? "s" : "", d.ranks_text());
}

}  // namespace

Trainer::Trainer(const Communicator& comm, nn::Sequential<float>& model,
                 nn::Optimizer<float>& optimizer, TrainerOptions options)
    : Trainer(comm, model, nullptr, optimizer, std::move(options)) {}

Trainer::Trainer(const Communicator& comm, Replica& replica, nn::Optimizer<float>& optimizer,
                 TrainerOptions options)
    : Trainer(comm, replica.model(), &replica, optimizer, std::move(options)) {}

Trainer::Trainer(const Communicator& comm, nn::Sequential<float>& model, Replica* replica,
                 nn::Optimizer<float>& optimizer, TrainerOptions options)
    : comm_(comm.duplicate()),
      model_(model),
      replica_(replica),
      optimizer_(optimizer),
      options_(std::move(options)) {
  comm_.set_check_mode(comm.check_mode());
  options_.check = options_.check || comm.check_mode();
  if (optimizer_.size() != model_.parameter_count()) {
    throw InvalidArgument(
        fmt::format("Trainer: the optimizer is sized for {} parameters, the model has {}",
                    optimizer_.size(), model_.parameter_count()));
  }
  // Two helper threads beside the compute threads: the reducer's progress thread and,
  // when the source reads ahead, a loader's reader thread. Agreed: a rank that cannot start
  // its threads fails every rank, before the collectives below.
  agree_on(comm_, [this] {
    cores_ = nn::plan_cores(options_.threads, 2);
    if (options_.spin_us && *options_.spin_us < 0) {
      throw InvalidArgument("Trainer: spin_us must be >= 0");
    }
    const nn::ThreadPoolOptions pool_options =
        options_.spin_us ? nn::pool_options_for_spin(*options_.spin_us) : cores_.pool_options();
    pool_ = std::make_unique<nn::ThreadPool>(cores_.compute_threads, pool_options);
  });
  const std::size_t bucket_bytes =
      options_.bucket_bytes == 0 ? default_bucket_bytes() : options_.bucket_bytes;
  const std::vector<std::size_t> ends = layer_ends(model_);
  // The reducer's communicator, made here so that the gradient arena can be put in its
  // node-shared window before the reducer cuts it into buckets.
  Communicator reducer_comm = comm_.duplicate();
  shared_gradients_ =
      std::make_unique<detail::SharedGradients>(reducer_comm, model_, options_.shared_gradients);
  // The non-finite check of the gradient is part of the averaging: each reduced unit is
  // scanned on the progress thread as soon as it is averaged, overlapped with the rest of
  // backward. The averaged bits are identical on every rank, so every rank flags alike and
  // the verdict after wait_all() needs no further communication.
  reducer_ = std::make_unique<GradientReducer>(
      std::move(reducer_comm), GradientReducer::split(model_.gradients(), bucket_bytes, ends),
      ReducerOptions{.algorithm = options_.algorithm,
                     .op = ReduceOp::Average,
                     .fusion_bytes = options_.fusion_bytes,
                     .after_reduce =
                         [this](std::span<const float> reduced) {
                           if (!detail::all_finite(reduced)) {
                             gradient_nonfinite_.store(true, std::memory_order_relaxed);
                           }
                         },
                     .pace_while_computing = options_.pace_polls});
  step_sums_ = std::make_unique<detail::StepSumsReduction>();
  // Every replica starts from rank 0's parameters, whatever each rank initialised.
  broadcast<float>(comm_, model_.parameters(), 0);
  if (options_.check) check_replicas("after the initial broadcast");
  recorder_ =
      std::make_unique<detail::TimelineRecorder>(options_.record_timeline, ReducerClock::now());
  // Last, so that a constructor that throws leaves no pointer to its pool behind.
  model_.set_thread_pool(pool_.get());
  optimizer_.set_thread_pool(pool_.get());
}

Trainer::~Trainer() {
  if (model_.thread_pool() == pool_.get()) model_.set_thread_pool(nullptr);
  if (optimizer_.thread_pool() == pool_.get()) optimizer_.set_thread_pool(nullptr);
}

void Trainer::set_position(const TrainPosition& position) {
  if (position.epoch < 0 || position.step_in_epoch < 0 || position.global_step < 0) {
    throw InvalidArgument(
        fmt::format("Trainer::set_position: negative position (epoch {}, step {}, global step {})",
                    position.epoch, position.step_in_epoch, position.global_step));
  }
  position_ = position;
  // A begun epoch was set up for the old position (its source has skipped to it): reading
  // on from there at the new position would train on the wrong batches.
  epoch_source_ = nullptr;
}

const std::vector<TimelineEvent>& Trainer::timeline() const noexcept { return recorder_->events(); }

void Trainer::check_replicas(const char* when) const {
  const auto hash = static_cast<std::int64_t>(fnv1a(model_.parameters()));
  agree_equal(
      comm_, std::span<const std::int64_t>(&hash, 1),
      [when](const Disagreement& d) {
        return fmt::format(
            "check mode: the parameters of {} differ from rank 0's {} (rank {}: hash {:016x} "
            "vs {:016x}); the replicas have diverged",
            ranks_phrase(d), when, d.rank, static_cast<std::uint64_t>(d.theirs[0]),
            static_cast<std::uint64_t>(d.reference[0]));
      },
      ErrorKind::Mismatch);
}

std::int64_t Trainer::start_epoch(BatchSource& source) {
  // Until this epoch is ready, none is begun: a failure below leaves train_step() refusing.
  epoch_source_ = nullptr;
  const auto steps = static_cast<std::int64_t>(source.steps_per_epoch());
  agree_on_epoch(steps);
  if (position_.step_in_epoch > steps) {  // the same on every rank, agreed just above
    throw InvalidArgument(
        -1,
        fmt::format("Trainer::start_epoch: the position is at step {} of an epoch of {} steps",
                    position_.step_in_epoch, steps),
        true);
  }
  if (position_.step_in_epoch == steps) {
    finish_epoch();  // nothing left (a position saved after the epoch's last step)
    return 0;
  }
  std::vector<std::size_t> real = global_real_counts(source, steps);
  if (position_.step_in_epoch > 0) skip_trained_batches(source, steps);
  epoch_real_ = std::move(real);
  epoch_steps_ = steps;
  epoch_source_ = &source;
  return steps - position_.step_in_epoch;
}

void Trainer::agree_on_epoch(std::int64_t steps) const {
  // Each step is collective: ranks with different step counts, or at different places of
  // the epoch, would hang. One watched agreement per epoch names the ranks that differ.
  const std::array<std::int64_t, 3> mine = {steps, position_.epoch, position_.step_in_epoch};
  agree_equal(
      world(), mine,
      [](const Disagreement& d) {
        const std::string what =
            d.theirs[0] != d.reference[0]
                ? fmt::format("rank {}'s batch source has {} steps per epoch, rank 0's has {}",
                              d.rank, d.theirs[0], d.reference[0])
                : fmt::format("rank {} is at epoch {} step {}, rank 0 at epoch {} step {}", d.rank,
                              d.theirs[1], d.theirs[2], d.reference[1], d.reference[2]);
        const std::string all =
            d.ranks.size() > 1 ? fmt::format(" ({} differ from rank 0)", ranks_phrase(d)) : "";
        return fmt::format("Trainer::start_epoch: {}{}", what, all);
      },
      ErrorKind::InvalidArgument);
}

std::vector<std::size_t> Trainer::global_real_counts(BatchSource& source, std::int64_t steps) {
  // The global real count of every step, when every rank's source knows its own in
  // advance (zeros otherwise): one allreduce per epoch, so that each step can synchronise
  // only once (see run_step). Entry `steps` counts the ranks that knew, entry `steps + 1`
  // the ranks whose source failed to start: a source is local, so such a failure rides on
  // this allreduce and is then agreed (the failing rank's error class on every rank, no
  // rank left waiting in it).
  const auto n = static_cast<std::size_t>(steps);
  std::vector<std::int64_t> global_real(n + 2, 0);
  std::optional<Failure> failure;
  try {
    source.start_epoch(static_cast<std::uint64_t>(position_.epoch));
    const std::vector<std::size_t> mine = source.real_per_step();
    if (mine.size() == n) {
      std::copy(mine.begin(), mine.end(), global_real.begin());
      global_real[n] = 1;
    }
  } catch (const std::exception&) {
    failure = failure_in(fmt::format("starting epoch {} of the batch source", position_.epoch));
  }
  global_real[n + 1] = failure ? 1 : 0;
  // Over every rank the steps agree over: a split replica's ranks all read the same
  // batches, so the sum over world() counts each replica's `ranks_per_replica` times.
  allreduce<std::int64_t>(world(), global_real, ReduceOp::Sum, Algorithm::Auto);
  if (global_real[n + 1] > 0) agree(world(), failure);
  if (global_real[n] != world().size()) return std::vector<std::size_t>(n, 0);
  const std::int64_t ranks_per_replica = world().size() / comm_.size();
  std::vector<std::size_t> counts(n);
  for (std::size_t s = 0; s < n; ++s) {
    counts[s] = static_cast<std::size_t>(global_real[s] / ranks_per_replica);
  }
  return counts;
}

void Trainer::skip_trained_batches(BatchSource& source, std::int64_t steps) {
  // A resumed run skips the batches its epoch already trained on (the order is a function
  // of the seed and the epoch, so these are the same batches). Every rank resumes at the
  // same step, so all agree on a failure here (once per resumed epoch).
  std::optional<Failure> failure;
  for (std::int64_t s = 0; s < position_.step_in_epoch && !failure; ++s) {
    failure = fetch(source, batch_, s, steps);
  }
  agree(world(), failure);
}

StepResult Trainer::train_step(BatchSource& source) {
  if (epoch_source_ != &source) {
    throw InvalidArgument(
        "Trainer::train_step: no epoch of this batch source is begun (call start_epoch())");
  }
  const auto s = static_cast<std::size_t>(position_.step_in_epoch);
  const auto t0 = ReducerClock::now();
  auto t1 = t0;
  StepResult result;
  try {
    std::optional<Failure> data_failure =
        fetch(source, batch_, position_.step_in_epoch, epoch_steps_);
    batch_.global_real = epoch_real_[s];
    t1 = ReducerClock::now();
    result = run_step(batch_, epoch_steps_, seconds_between(t0, t1), std::move(data_failure));
  } catch (...) {
    // The source has moved past this batch while the position has not: only a new
    // start_epoch() brings them back in line.
    epoch_source_ = nullptr;
    throw;
  }
  recorder_->add(EventKind::Data, position_.global_step - 1, t0, t1);
  ++position_.step_in_epoch;
  if (position_.step_in_epoch == epoch_steps_) finish_epoch();
  return result;
}

void Trainer::finish_epoch() {
  epoch_source_ = nullptr;
  ++position_.epoch;
  position_.step_in_epoch = 0;
  if (options_.check) {
    check_replicas(fmt::format("after epoch {}", position_.epoch).c_str());
  }
}

EpochResult Trainer::train_epoch(BatchSource& source, const StepObserver& after_step) {
  const auto start = ReducerClock::now();
  const std::int64_t steps = start_epoch(source);
  EpochTally tally;
  for (std::int64_t s = 0; s < steps; ++s) {
    const StepResult r = train_step(source);
    tally.add(r);
    if (after_step) after_step(r, tally.result(seconds_between(start, ReducerClock::now())));
  }
  return tally.result(seconds_between(start, ReducerClock::now()));
}

std::optional<Failure> Trainer::evaluate_replica(BatchSource& source, std::array<double, 4>& sums,
                                                 std::int64_t& steps) {
  // The ranks of a split replica run every batch together: before each one they agree
  // that every one of them has it (the same shard, so the same count), so that a rank
  // whose source fails leaves none of the others waiting inside the replica's collectives.
  std::optional<Failure> local;
  try {
    source.start_epoch(0);
  } catch (const std::exception&) {
    local = failure_in("starting the evaluation source");
  }
  Batch batch;
  while (true) {
    bool more = false;
    if (!local) {
      try {
        more = source.next(batch);
      } catch (const std::exception&) {
        local = failure_in(fmt::format("evaluation batch {}", steps));
      }
    }
    try {
      agree(replica_->members(), local);
    } catch (const std::exception&) {
      // Every rank of the replica stops here; the failing rank's own failure is what the
      // agreement over the world (in evaluate()) then names.
      return local;
    }
    if (!more) return std::nullopt;
    ++steps;
    if (batch.real == 0) continue;
    // Every rank of the replica runs the batch; one of them counts it.
    const nn::LossResult loss = replica_->evaluate_batch(batch);
    if (!replica_->reports_loss()) continue;
    sums[0] += loss.loss_sum;
    sums[1] += static_cast<double>(loss.correct);
    sums[2] += static_cast<double>(loss.count);
  }
}

EpochResult Trainer::evaluate(BatchSource& source) {
  const auto start = ReducerClock::now();
  // Evaluation restarts the source: an epoch of it begun for training cannot go on.
  if (&source == epoch_source_) epoch_source_ = nullptr;
  // Local loop, no collective inside (but a split replica's, whose ranks run each batch
  // together): a rank (replica) with a smaller share simply finishes first.
  // The 4th sum counts the ranks whose source failed (to start, or to read): such a rank
  // stops reading but still joins the allreduce, and then every rank throws the same
  // agreed Error (see run_step).
  std::array<double, 4> sums = {0.0, 0.0, 0.0, 0.0};
  std::optional<Failure> failure;
  nn::Matrix<float> grad;
  EpochResult result;
  Batch batch;
  if (replica_ != nullptr) {
    failure = evaluate_replica(source, sums, result.steps);
  } else {
    try {
      source.start_epoch(0);
      while (source.next(batch)) {
        ++result.steps;
        if (batch.real == 0) continue;
        const auto real = static_cast<Eigen::Index>(batch.real);
        const nn::Matrix<float>& logits = model_.forward(batch.x.leftCols(real));
        const nn::LossResult loss = nn::softmax_cross_entropy<float>(
            logits, std::span<const std::int32_t>(batch.labels).first(batch.real), grad);
        sums[0] += loss.loss_sum;
        sums[1] += static_cast<double>(loss.correct);
        sums[2] += static_cast<double>(loss.count);
      }
    } catch (const std::exception&) {
      failure = failure_in(fmt::format("evaluation batch {}", result.steps));
    }
  }
  sums[3] = failure ? 1.0 : 0.0;
  // Not a training step: stall reports name no step here. Recursive doubling: watched.
  comm_.set_stall_context({});
  allreduce<double>(world(), sums, ReduceOp::Sum, Algorithm::RecursiveDoubling);
  if (sums[3] > 0.0) agree(world(), failure);
  result.samples = static_cast<std::int64_t>(sums[2]);
  result.loss = sums[2] > 0 ? sums[0] / sums[2] : 0.0;
  result.accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
  const auto end = ReducerClock::now();
  result.seconds = seconds_between(start, end);
  recorder_->add(EventKind::Evaluate, position_.global_step, start, end);
  return result;
}

}  // namespace ringdp::train
