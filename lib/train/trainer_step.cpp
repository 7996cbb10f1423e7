// One training step, in its parts: metrics (forward, loss and the step's one small
// allreduce), backward + reduce, the verdict, and the record (times, timeline).

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ringdp/error.hpp"
#include "ringdp/train/trainer.hpp"
#include "train/step_sums.hpp"
#include "train/step_verdict.hpp"
#include "train/timeline_recorder.hpp"

namespace ringdp::train {
namespace {

detail::Moment now() { return ReducerClock::now(); }

// This rank's part of the step's metrics allreduce: its loss sum, correct and real count,
// whether its batch failed, and whether its loss is not finite (a count, and its rank for
// the minimum that names the lowest such rank).
detail::StepSums local_sums(const nn::LossResult& loss, bool have_batch, int rank) {
  detail::StepSums sums{.loss_sum = loss.loss_sum,
                        .correct = static_cast<double>(loss.correct),
                        .count = static_cast<double>(loss.count),
                        .failed_ranks = have_batch ? 0.0 : 1.0};
  if (!std::isfinite(loss.loss_sum)) {
    sums.bad_ranks = 1.0;
    sums.first_bad_rank = static_cast<double>(rank);
  }
  return sums;
}

}  // namespace

StepResult Trainer::step(const Batch& batch, std::int64_t steps_per_epoch) {
  return run_step(batch, steps_per_epoch, 0.0, std::nullopt);
}

// The one small allreduce of the step (reduce_metrics) carries the sums of loss, correct
// and real count, the ranks whose batch failed, and which ranks' loss is not finite. A NaN
// or Inf in any rank's loss makes the summed loss non-finite on every rank alike, so all
// ranks decide the same without another message; the rank fields only name the culprit. A
// data error on one rank stops every rank at this allreduce instead of leaving the others
// waiting in the next collective.
//
// It sits after the gradient reduction when the global real count is known in advance
// (batch.global_real), so that the step synchronises the ranks once: they arrive at the
// gradient reduction with whatever skew forward and backward gave them and leave it
// together, so the metrics allreduce right after costs only its latency. Otherwise it must
// come first ("early"), because the count weighs the gradient.
StepResult Trainer::run_step(const Batch& batch, std::int64_t steps_per_epoch, double data_seconds,
                             std::optional<Failure> data_failure) {
  if (replica_ != nullptr) {
    return run_replica_step(batch, steps_per_epoch, data_seconds, std::move(data_failure));
  }
  const std::int64_t global_step = position_.global_step;
  // Stall reports of this step's collectives name it (the reducer adds its buckets).
  comm_.set_stall_context({.step = global_step});
  reducer_->set_stall_step(global_step);
  detail::StepMarks marks;
  marks.start = now();
  if (!data_failure) data_failure = detail::check_batch(batch);
  // A rank without a batch skips forward and backward but still joins the collectives.
  const bool have_batch = !data_failure;
  const nn::LossResult loss = have_batch ? forward(batch) : nn::LossResult{};
  marks.forward_end = now();

  detail::StepSums sums = local_sums(loss, have_batch, comm_.rank());
  marks.metrics_early = batch.global_real == 0;
  if (marks.metrics_early) reduce_metrics(sums, data_failure);
  marks.early_end = now();
  const double global_real =
      marks.metrics_early ? sums.count : static_cast<double>(batch.global_real);

  StepResult result;
  result.learning_rate =
      options_.schedule.rate(global_step, std::max<std::int64_t>(1, steps_per_epoch), comm_.size());
  // Known before backward: no backward, the gradient of a non-finite loss is of no use.
  if (marks.metrics_early) apply(result, detail::loss_verdict(sums, global_step));
  marks.backward = global_real > 0 && !result.skipped;
  marks.backward_end = marks.wait_end = marks.early_end;
  if (marks.backward) backward_and_reduce(loss, global_real, have_batch, marks);

  marks.late_end = marks.wait_end;
  if (!marks.metrics_early) {
    reduce_metrics(sums, data_failure);
    marks.late_end = now();
    detail::check_announced_count(sums, batch.global_real, global_step);
    // The loss's verdict comes first: it explains a non-finite gradient.
    apply(result, detail::loss_verdict(sums, global_step));
  }
  const auto global_count = static_cast<std::int64_t>(sums.count);
  result.samples = global_count;
  result.loss = global_count > 0 ? sums.loss_sum / sums.count : 0.0;
  result.accuracy = global_count > 0 ? sums.correct / sums.count : 0.0;

  marks.update_end = marks.late_end;
  if (marks.backward && !result.skipped) {
    update(result, global_step);
    marks.update_end = now();
  }
  ++position_.global_step;
  record(result, marks, data_seconds, global_step);
  return result;
}

nn::LossResult Trainer::forward(const Batch& batch) {
  // The loss gradient is that of this rank's mean over its real samples; padded columns
  // get zero gradient and no loss.
  const nn::Matrix<float>& logits = model_.forward(batch.x);
  return nn::softmax_cross_entropy<float>(logits, batch.labels, dlogits_, batch.real,
                                          batch.real > 0 ? static_cast<double>(batch.real) : 1.0);
}

void Trainer::reduce_metrics(detail::StepSums& sums, const std::optional<Failure>& data_failure) {
  step_sums_->reduce(comm_, sums);
  // Every rank sees the same sums: all call agree(), which throws the same error (the
  // failing rank's class) on every rank, naming the lowest failing rank and its cause.
  if (sums.failed_ranks > 0.0) agree(comm_, data_failure);
}

void Trainer::backward_and_reduce(const nn::LossResult& loss, double global_real, bool have_batch,
                                  detail::StepMarks& marks) {
  // Weigh by real counts: after the Average over k ranks, rank r's gradient of (its loss
  // sum / its count) scaled by k count_r / global_count contributes loss_sum_r /
  // global_count, so the result is the gradient of the global mean. Exactly 1 when every
  // rank holds the same count: no rescaling, no rounding.
  const double scale =
      static_cast<double>(comm_.size()) * static_cast<double>(loss.count) / global_real;
  if (scale != 1.0) dlogits_ *= static_cast<float>(scale);

  // Backward; from here until wait_all() returns only the progress thread calls MPI.
  gradient_nonfinite_.store(false, std::memory_order_relaxed);
  if (!have_batch) {
    // Only when the count was known in advance: the other ranks are already reducing, so
    // join with a zero gradient; the metrics allreduce then stops every rank.
    std::fill(model_.gradients().begin(), model_.gradients().end(), 0.0f);
  } else if (options_.overlap) {
    model_.backward(dlogits_, [this](std::size_t, nn::ArenaRange range) {
      reducer_->submit_prefix(range.end());
    });
  } else {
    model_.backward(dlogits_);
  }
  reducer_->submit_prefix(model_.parameter_count());
  marks.backward_end = now();
  reducer_->wait_all();
  marks.wait_end = now();
}

void Trainer::update(StepResult& result, std::int64_t step) {
  // The progress thread flagged any averaged bucket holding a NaN or Inf; the averaged
  // bits are the same on every rank, so is the flag.
  if (gradient_nonfinite_.load(std::memory_order_relaxed)) {
    apply(result, detail::gradient_verdict(model_, step));
  } else {
    optimizer_.step(model_.parameters(), model_.gradients(), result.learning_rate);
  }
}

void Trainer::apply(StepResult& result, const std::optional<NonFiniteError>& verdict) const {
  if (!verdict) return;
  if (!options_.skip_nonfinite) throw *verdict;
  result.skipped = true;
  result.nonfinite = verdict->what();
}

void Trainer::record(StepResult& result, const detail::StepMarks& marks, double data_seconds,
                     std::int64_t step) {
  result.times = marks.times(data_seconds);
  times_.add(result.times);
  recorder_->add_step(step, marks, *reducer_);
}

}  // namespace ringdp::train
