#pragma once
/// \file
/// The data-parallel trainer: identical model replicas on every rank, kept identical by
/// averaging gradients (overlapped with backward) before every optimizer step.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/optimizer.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/thread_pool.hpp"
#include "ringdp/train/batch_source.hpp"
#include "ringdp/train/checkpoint.hpp"
#include "ringdp/train/lr_schedule.hpp"
#include "ringdp/train/non_finite.hpp"
#include "ringdp/train/replica.hpp"
#include "ringdp/train/step_result.hpp"
#include "ringdp/train/time_stats.hpp"
#include "ringdp/train/timeline.hpp"
#include "ringdp/types.hpp"

namespace ringdp::train {

namespace detail {
class SharedGradients;
class StepSumsReduction;
class TimelineRecorder;
struct StepMarks;
struct StepSums;
}  // namespace detail

/// Options of a Trainer; pass the same values on every rank.
struct TrainerOptions {
  /// Gradient bucket size in bytes; 0: default_bucket_bytes() (RINGDP_BUCKET_BYTES).
  /// Buckets also end at every layer's end, so a layer's gradients leave as soon as
  /// backward has finished that layer.
  std::size_t bucket_bytes = 0;
  /// Fusion limit of the reducer; SIZE_MAX: default_fusion_bytes().
  std::size_t fusion_bytes = static_cast<std::size_t>(-1);
  /// Allreduce algorithm for the gradients (Auto: by size, or RINGDP_ALGORITHM).
  Algorithm algorithm = Algorithm::Auto;
  /// true: hand each bucket to the reducer as backward finishes it (overlap). false:
  /// reduce everything after backward (for comparison in benchmarks).
  bool overlap = true;
  /// The reducer's progress thread polls gently while backward runs (see
  /// ReducerOptions::pace_while_computing); false: it spins (for comparison in benchmarks).
  bool pace_polls = true;
  /// Check mode: compare a hash of the parameters across ranks after the initial
  /// broadcast and after every epoch; a mismatch throws an Error on every rank naming a
  /// differing rank. Also on when the communicator is in check mode (RINGDP_CHECK).
  bool check = false;
  /// Learning-rate schedule (constant 0.05 by default, no scaling, no warm-up).
  LrSchedule schedule = {};
  /// Keep a TimelineEvent record of every step (for write_chrome_trace()).
  bool record_timeline = false;
  /// What a NaN or Inf in the loss or in the averaged gradient does. Every step checks
  /// both, in a way every rank decides alike (the loss in the step's metrics allreduce, the
  /// gradient on the averaged bits). false: the step throws NonFiniteError on every rank,
  /// before the optimizer has touched the parameters. true: the step is skipped on every
  /// rank (no optimizer update, optimizer state untouched), StepResult::skipped says so,
  /// and training goes on.
  bool skip_nonfinite = false;
  /// Compute threads of this rank: the trainer runs a nn::ThreadPool of this many threads
  /// (the calling thread included) and gives it to the model and the optimizer for as long
  /// as it lives. 0: one per CPU this rank may run on (sched_getaffinity) minus one CPU
  /// counted for the reducer's progress thread and a loader's reader thread (nn::plan_cores;
  /// Trainer::cores() tells what was planned). Results are deterministic for a fixed count;
  /// replicas stay bit-identical whatever each rank's count. Must be >= 0 (InvalidArgument).
  int threads = 1;
  /// How long the compute threads spin before they block (µs) between the kernels of a
  /// step: nullopt leaves it to nn::CoreBudget::pool_options() (50, or 0 when the compute
  /// threads plus one CPU for the helpers exceed the rank's CPUs); 0 blocks at once. Only a
  /// speed trade (bench/nn_throughput/README.md); a pool that blocks at once also splits
  /// fewer kernels (nn::pool_options_for_spin), so the last bits may differ between 0 and a
  /// spin, deterministic for each. Must be >= 0.
  std::optional<int> spin_us = std::nullopt;
  /// When ranks share a node, keep the model's gradient arena in node-shared memory for
  /// the trainer's lifetime (a SharedBuffer of the reducer's communicator; moved back,
  /// contents kept, when the trainer goes): shm and hier then read every rank's gradients
  /// in place and write the averages straight into every arena. The same bits either
  /// way; false leaves the arena where it is (for comparison in benchmarks and tests).
  bool shared_gradients = true;
};

/// Where a run stands, for checkpoints: together with the parameter arena and the
/// optimizer state, enough to continue bit-identically (the batch order depends only on
/// the source's seed and the epoch).
struct TrainPosition {
  std::int64_t epoch = 0;          ///< current epoch (0-based); completed epochs
  std::int64_t step_in_epoch = 0;  ///< steps done in the current epoch
  std::int64_t global_step = 0;    ///< steps done in the whole run (drives the schedule)
};

/// The data-parallel training loop over a model and an optimizer owned by the caller.
///
/// Each step: batch -> forward -> loss -> backward, with each finished bucket of the
/// gradient arena handed to a GradientReducer whose progress thread averages it while
/// backward goes on -> wait_all -> ONE small allreduce of (loss sum, correct, real count)
/// -> optimizer step. The global count of real samples weighs the gradient: a rank with
/// padding in its last batch scales its gradient by (ranks x its real count / global real
/// count), so the average over ranks is the gradient of the global mean loss, exactly as a
/// 1-rank run with the whole batch (the factor is exactly 1, and nothing is scaled, when
/// every rank holds the same count). start_epoch() learns every step's global count in
/// advance (BatchSource::real_per_step(), one allreduce per epoch), so a train_step() (and
/// so train_epoch()) synchronises the ranks once: the metrics allreduce follows the
/// gradient reduction. When the count is not known (Batch::global_real == 0) the metrics
/// allreduce moves before backward, and the step synchronises twice.
///
/// Non-finite values: a NaN or Inf in any rank's loss shows in the metrics allreduce, and
/// one in the averaged gradient is found by a vectorised scan of each reduced bucket on
/// the progress thread (the averaged bits are the same on every rank). Either way every rank
/// reaches the same verdict, and the step throws NonFiniteError or, with
/// TrainerOptions::skip_nonfinite, makes no update.
///
/// Every method is collective over `comm` unless it says otherwise: call them on every
/// rank in the same order. MPI: needs MPI_THREAD_SERIALIZED (the reducer's progress thread);
/// while a step runs, the trainer's own thread makes no MPI call between the start of
/// backward and the return of wait_all().
/// Not thread-safe.
class Trainer {
 public:
  /// Collective: broadcasts the parameter arena from rank 0 (so every replica starts from
  /// rank 0's initialisation), then, in check mode, verifies the ranks hold the same bits.
  /// `model` and `optimizer` must outlive the trainer; the optimizer must be sized for the
  /// model (InvalidArgument otherwise).
  Trainer(const Communicator& comm, nn::Sequential<float>& model, nn::Optimizer<float>& optimizer,
          TrainerOptions options = {});
  /// A replica split over several ranks (tensor and pipeline parallelism, see Replica):
  /// `comm` is this rank's DATA group (the ranks holding the same part in every replica),
  /// over which the gradients are averaged, the parameters broadcast and, in check mode,
  /// compared; the steps' metrics, verdicts and data failures are agreed over
  /// replica.world(). A step then runs the replica's forward, loss and backward in one call
  /// (ParallelMlp's pipeline interleaves them), needs every rank of a replica to read the
  /// same batches, and synchronises the world twice (a data failure is agreed before the
  /// replica computes). The checkpoint state (capture(), restore()) is the unsplit model's.
  /// Collective over replica.world(); `replica` must outlive the trainer.
  Trainer(const Communicator& comm, Replica& replica, nn::Optimizer<float>& optimizer,
          TrainerOptions options = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Begins the current epoch (position().epoch) over `source`, for train_step(): checks
  /// in one watched agreement that every rank's source has the same steps_per_epoch() and
  /// every rank the same position (an InvalidArgument on every rank names the ranks that
  /// differ from rank 0), calls source.start_epoch(), learns the global real count of every
  /// step of the epoch (one allreduce, of BatchSource::real_per_step()) and, when resuming
  /// mid-epoch, skips the position().step_in_epoch batches already trained on. A failure of
  /// the source in any of these (start_epoch(), real_per_step(), a skipped batch) is the
  /// same error on every rank, of the failing rank's class (an IoError stays an IoError),
  /// naming the lowest failing rank. Returns the
  /// steps left in the epoch; when none is left, the epoch is finished at once, as by the
  /// last train_step(), without starting the source.
  std::int64_t start_epoch(BatchSource& source);

  /// One step of the epoch begun by start_epoch(), on the next batch of `source` (the same
  /// source), its fetch timed as the step's data time. Advances position(); after the
  /// epoch's last step, to the next epoch (step 0), and in check mode compares parameter
  /// hashes. A source is local, so a failure to fetch (an I/O error, a source that ends
  /// early) is agreed inside the step: every rank throws the same ringdp::Error (collective,
  /// of the failing rank's class) naming the lowest failing rank and its cause, and no rank
  /// is left waiting. After an
  /// exception from the step itself (that, a NonFiniteError, ...) position() is the one
  /// before the step. The one exception: after the epoch's last step, check mode's
  /// comparison of the replicas (an Error on every rank) throws once the step is done,
  /// with position() already at the next epoch. Either way the next train_step() needs a
  /// start_epoch(). InvalidArgument (local; every rank alike when all call in the same
  /// order) when no epoch of `source` is begun (none since the last epoch ended, or since
  /// set_position() or evaluate() on the same source).
  StepResult train_step(BatchSource& source);

  /// Called by train_epoch() after each step with the step's result and the epoch's so far
  /// (its seconds: since train_epoch() began), e.g. for a progress line or a checkpoint.
  using StepObserver = std::function<void(const StepResult& step, const EpochResult& so_far)>;

  /// start_epoch(), then train_step() to the end of the epoch: the rest of the current
  /// epoch over `source`, calling `after_step` (when set) after each step. Returns the
  /// epoch's metrics and time breakdown over the steps it ran (EpochTally); its seconds
  /// include the observer's. An exception from the observer leaves the trainer after that
  /// step (the epoch still begun, so train_step() can go on); throw it on every rank alike.
  EpochResult train_epoch(BatchSource& source, const StepObserver& after_step = {});

  /// One step on `batch`, outside any epoch bookkeeping (every rank calls it with its own
  /// batch; `steps_per_epoch` is used by the schedule). Set batch.global_real on every
  /// rank, or on none (then the step synchronises twice). Throws the same Error on every
  /// rank when it differs from the sum of the ranks' batch.real. Advances
  /// position().global_step only; train_step() also keeps the epoch's place.
  /// Throws NonFiniteError on every rank for a NaN or Inf in the loss or the averaged
  /// gradient (unless skip_nonfinite); the parameters, optimizer state and position are
  /// then those from before the step, and the trainer can go on.
  StepResult step(const Batch& batch, std::int64_t steps_per_epoch);

  /// Evaluates the model on `source` (an evaluation-mode source: no padding, every sample
  /// on exactly one rank, shares may differ, so may steps_per_epoch()). Each rank runs its
  /// own batches with no communication, then one allreduce sums (loss, correct, count):
  /// no rank waits on another mid-way, and each sample counts exactly once. Restarts
  /// `source`: an epoch of it begun by start_epoch() ends (train_step() needs a new one).
  EpochResult evaluate(BatchSource& source);

  /// Local: where the run stands.
  [[nodiscard]] const TrainPosition& position() const noexcept { return position_; }
  /// Local: restores a position (with the arena and optimizer state set by the caller,
  /// e.g. from a checkpoint). Throws InvalidArgument on negative values. Ends any epoch
  /// begun by start_epoch(): call start_epoch() again before train_step().
  void set_position(const TrainPosition& position);

  /// Local: this trainer's state as a checkpoint: the parameter arena, the optimizer (kind,
  /// step count, state arrays), the position and the rank count (of world()). With a
  /// Replica: collective over the replica's ranks, and the arrays are the unsplit model's
  /// (gathered), so that a run saved under one split resumes under another. What the trainer does
  /// not know (model spec, sample order, metadata) is left for the caller (see Checkpointer).
  [[nodiscard]] Checkpoint capture() const;
  /// Local: what a checkpoint must match to be restored into this trainer, for a model
  /// built from `model_spec` (see load_checkpoint()).
  [[nodiscard]] CheckpointExpectation checkpoint_expectation(std::string model_spec) const;
  /// Local: restores the parameter arena, the optimizer's state arrays and step count, and
  /// the position (as set_position()) from `checkpoint` (with a Replica: this rank's part
  /// of the unsplit arrays). Throws InvalidArgument, changing
  /// nothing, when it does not fit this trainer (parameter count, rank count, optimizer
  /// kind and state arrays; the model spec is the loader's to check). Given the same
  /// checkpoint (load_checkpoint() gives every rank the same), every rank decides alike.
  void restore(const Checkpoint& checkpoint);

  /// Collective: compares an FNV-1a hash of the parameter arena across ranks (one watched
  /// agreement); throws MismatchError on every rank naming the ranks whose parameters
  /// differ from rank 0's (rank() the lowest of them).
  void check_replicas(const char* when) const;

  /// Local: step time accounting since construction (or clear_times()).
  [[nodiscard]] const TimeStats& times() const noexcept { return times_; }
  void clear_times() noexcept { times_.clear(); }
  /// Local: the event record (when record_timeline), in the order recorded (a step's parts
  /// as they end), and the reducer's buckets.
  [[nodiscard]] const std::vector<TimelineEvent>& timeline() const noexcept;
  [[nodiscard]] const GradientReducer& reducer() const noexcept { return *reducer_; }
  [[nodiscard]] const TrainerOptions& options() const noexcept { return options_; }
  /// Local: this rank's CPUs and threads as planned from TrainerOptions::threads.
  [[nodiscard]] const nn::CoreBudget& cores() const noexcept { return cores_; }
  /// The ranks whose gradients are averaged (the data group of a split replica).
  [[nodiscard]] const Communicator& communicator() const noexcept { return comm_; }
  /// Every rank the trainer's steps agree over: communicator(), or with a Replica its
  /// world(). Checkpoints are written and read over it.
  [[nodiscard]] const Communicator& world() const noexcept {
    return replica_ != nullptr ? replica_->world() : comm_;
  }

 private:
  Trainer(const Communicator& comm, nn::Sequential<float>& model, Replica* replica,
          nn::Optimizer<float>& optimizer, TrainerOptions options);
  // A step of a split replica (trainer_replica.cpp).
  StepResult run_replica_step(const Batch& batch, std::int64_t steps_per_epoch, double data_seconds,
                              std::optional<Failure> data_failure);
  [[nodiscard]] double replica_global_real(const Batch& batch) const;
  // evaluate()'s batches for a split replica: agreed over the replica before each one.
  std::optional<Failure> evaluate_replica(BatchSource& source, std::array<double, 4>& sums,
                                          std::int64_t& steps);
  void replica_update(StepResult& result, const detail::StepSums& sums, std::int64_t step);
  // The parts of a step (trainer_step.cpp). `data_failure`: this rank could not fetch
  // `batch`; agreed in the step's metrics allreduce.
  StepResult run_step(const Batch& batch, std::int64_t steps_per_epoch, double data_seconds,
                      std::optional<Failure> data_failure);
  [[nodiscard]] nn::LossResult forward(const Batch& batch);
  void reduce_metrics(detail::StepSums& sums, const std::optional<Failure>& data_failure);
  void backward_and_reduce(const nn::LossResult& loss, double global_real, bool have_batch,
                           detail::StepMarks& marks);
  void update(StepResult& result, std::int64_t step);
  // A non-finite verdict: thrown, or with skip_nonfinite recorded in `result`.
  void apply(StepResult& result, const std::optional<NonFiniteError>& verdict) const;
  void record(StepResult& result, const detail::StepMarks& marks, double data_seconds,
              std::int64_t step);

  // The parts of start_epoch() (trainer.cpp).
  void agree_on_epoch(std::int64_t steps) const;
  [[nodiscard]] std::vector<std::size_t> global_real_counts(BatchSource& source,
                                                            std::int64_t steps);
  void skip_trained_batches(BatchSource& source, std::int64_t steps);
  // Advances to the next epoch; in check mode compares the replicas.
  void finish_epoch();

  Communicator comm_;
  nn::Sequential<float>& model_;
  // The split replica model_ is this rank's part of (null: model_ is a whole replica).
  Replica* replica_ = nullptr;
  nn::Optimizer<float>& optimizer_;
  TrainerOptions options_;
  // The compute threads (TrainerOptions::threads), given to model_ and optimizer_ at the
  // end of construction and taken back by the destructor.
  nn::CoreBudget cores_;
  std::unique_ptr<nn::ThreadPool> pool_;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<detail::StepSumsReduction> step_sums_;
  // The gradient arena in the reducer's shared window (null or inactive: where it was).
  // After reducer_, so that it goes first, while the reducer's communicator lives.
  std::unique_ptr<detail::SharedGradients> shared_gradients_;
  // Set on the progress thread when a reduced bucket holds a NaN or Inf; read after
  // wait_all() (whose lock orders the accesses; atomic to say so plainly).
  std::atomic<bool> gradient_nonfinite_{false};
  nn::Matrix<float> dlogits_;
  TrainPosition position_;
  TimeStats times_;
  std::unique_ptr<detail::TimelineRecorder> recorder_;
  Batch batch_;
  // The epoch begun by start_epoch(): its source (nullptr: none begun), its steps, and the
  // global real count of each of its steps (0: unknown).
  BatchSource* epoch_source_ = nullptr;
  std::int64_t epoch_steps_ = 0;
  std::vector<std::size_t> epoch_real_;
};

}  // namespace ringdp::train
