// One training step of a replica split over several ranks (Trainer over a Replica): the
// data failure agreed over the world first (the replica's ranks compute together), then
// the replica's forward, loss and backward in one call (a pipeline interleaves them), the
// gradient reduction over the data group, and the step's metrics and verdicts agreed over
// the world.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/error.hpp"
#include "ringdp/train/trainer.hpp"
#include "train/step_sums.hpp"
#include "train/step_verdict.hpp"
#include "train/timeline_recorder.hpp"

namespace ringdp::train {
namespace {

detail::Moment now() { return ReducerClock::now(); }

// This rank's part of the step's metrics: the loss only where the replica reports it (one
// rank per replica), whether its averaged gradient holds a NaN or Inf (every rank: each
// holds other parameters).
detail::StepSums replica_sums(const nn::LossResult& loss, bool reports, bool bad_gradient,
                              int rank) {
  detail::StepSums sums;
  sums.bad_gradient_ranks = bad_gradient ? 1.0 : 0.0;
  if (!reports) return sums;
  sums.loss_sum = loss.loss_sum;
  sums.correct = static_cast<double>(loss.correct);
  sums.count = static_cast<double>(loss.count);
  if (!std::isfinite(loss.loss_sum)) {
    sums.bad_ranks = 1.0;
    sums.first_bad_rank = static_cast<double>(rank);
  }
  return sums;
}

}  // namespace

double Trainer::replica_global_real(const Batch& batch) const {
  if (batch.global_real != 0) return static_cast<double>(batch.global_real);
  // Unknown in advance: the data group holds one rank of every replica, each with its
  // replica's batch.
  std::int64_t real = static_cast<std::int64_t>(batch.real);
  allreduce<std::int64_t>(comm_, std::span<std::int64_t>(&real, 1), ReduceOp::Sum,
                          Algorithm::RecursiveDoubling);
  return static_cast<double>(real);
}

StepResult Trainer::run_replica_step(const Batch& batch, std::int64_t steps_per_epoch,
                                     double data_seconds, std::optional<Failure> data_failure) {
  const std::int64_t global_step = position_.global_step;
  comm_.set_stall_context({.step = global_step});
  reducer_->set_stall_step(global_step);
  detail::StepMarks marks;
  marks.start = now();
  if (!data_failure) data_failure = detail::check_batch(batch);
  // A replica's ranks run forward and backward together: none may start without its batch.
  agree(world(), data_failure);
  const double global_real = replica_global_real(batch);
  // Forward, loss and backward are one call: their time counts as backward.
  marks.forward_end = marks.early_end = now();

  StepResult result;
  result.learning_rate =
      options_.schedule.rate(global_step, std::max<std::int64_t>(1, steps_per_epoch), comm_.size());
  marks.backward = global_real > 0;
  marks.backward_end = marks.wait_end = marks.early_end;
  nn::LossResult loss;
  if (marks.backward) {
    // Weighed as in backward_and_reduce(): the average over the data group is the
    // gradient of the global mean loss.
    const double scale =
        static_cast<double>(comm_.size()) * static_cast<double>(batch.real) / global_real;
    gradient_nonfinite_.store(false, std::memory_order_relaxed);
    nn::BackwardHook hook;
    if (options_.overlap) {
      hook = [this](std::size_t, nn::ArenaRange range) { reducer_->submit_prefix(range.end()); };
    }
    loss = replica_->train_batch(batch, scale, hook);
    reducer_->submit_prefix(model_.parameter_count());
    marks.backward_end = now();
    reducer_->wait_all();
    marks.wait_end = now();
  }
  detail::StepSums sums =
      replica_sums(loss, replica_->reports_loss(),
                   gradient_nonfinite_.load(std::memory_order_relaxed), world().rank());
  step_sums_->reduce(world(), sums);
  marks.late_end = now();
  if (batch.global_real != 0) detail::check_announced_count(sums, batch.global_real, global_step);
  apply(result, detail::loss_verdict(sums, global_step));
  const auto global_count = static_cast<std::int64_t>(sums.count);
  result.samples = global_count;
  result.loss = global_count > 0 ? sums.loss_sum / sums.count : 0.0;
  result.accuracy = global_count > 0 ? sums.correct / sums.count : 0.0;

  marks.update_end = marks.late_end;
  if (marks.backward && !result.skipped) {
    replica_update(result, sums, global_step);
    marks.update_end = now();
  }
  ++position_.global_step;
  record(result, marks, data_seconds, global_step);
  return result;
}

void Trainer::replica_update(StepResult& result, const detail::StepSums& sums, std::int64_t step) {
  // Each rank holds other parameters, so the verdict is the one agreed over the world.
  if (sums.bad_gradient_ranks > 0.0) {
    const auto ranks = static_cast<int>(sums.bad_gradient_ranks);
    apply(result, NonFiniteError(step, -1, -1,
                                 fmt::format("step {}: non-finite averaged gradient on {} "
                                             "rank{} of the split model",
                                             step, ranks, ranks > 1 ? "s" : "")));
    return;
  }
  optimizer_.step(model_.parameters(), model_.gradients(), result.learning_rate);
}

}  // namespace ringdp::train
