// The data-parallel step loop.

#include "ringdp/train/trainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <span>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "train/finite_scan.hpp"
#include "train/step_sums.hpp"

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

// "Dense 784x512": the layer's kind, capitalised, and its input and output sizes.
std::string describe_layer(const nn::Layer<float>& layer) {
  std::string kind = layer.kind();
  if (!kind.empty()) kind[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(kind[0])));
  return fmt::format("{} {}x{}", kind, layer.input_size(), layer.output_size());
}

// Fetches the next batch; a failure becomes a message instead of an exception, to be
// agreed on by every rank.
std::string fetch(BatchSource& source, Batch& batch, std::int64_t step, std::int64_t steps) {
  try {
    if (source.next(batch)) return {};
    return fmt::format("the batch source ended after {} of {} steps of the epoch", step, steps);
  } catch (const Error& e) {
    return fmt::format("batch {} of the epoch: {}", step, e.cause());
  } catch (const std::exception& e) {
    return fmt::format("batch {} of the epoch: {}", step, e.what());
  }
}

}  // namespace

Trainer::Trainer(const Communicator& comm, nn::Sequential<float>& model,
                 nn::Optimizer<float>& optimizer, TrainerOptions options)
    : comm_(comm.duplicate()), model_(model), optimizer_(optimizer), options_(std::move(options)) {
  comm_.set_check_mode(comm.check_mode());
  options_.check = options_.check || comm.check_mode();
  if (optimizer_.size() != model_.parameter_count()) {
    throw InvalidArgument(
        fmt::format("Trainer: the optimizer is sized for {} parameters, the model has {}",
                    optimizer_.size(), model_.parameter_count()));
  }
  const std::size_t bucket_bytes =
      options_.bucket_bytes == 0 ? default_bucket_bytes() : options_.bucket_bytes;
  const std::vector<std::size_t> ends = layer_ends(model_);
  // The non-finite check of the gradient is part of the averaging: each reduced unit is
  // scanned on the progress thread as soon as it is averaged, overlapped with the rest of
  // backward. The averaged bits are identical on every rank, so every rank flags alike and
  // the verdict after wait_all() needs no further communication.
  reducer_ = std::make_unique<GradientReducer>(
      comm_, GradientReducer::split(model_.gradients(), bucket_bytes, ends),
      ReducerOptions{.algorithm = options_.algorithm,
                     .op = ReduceOp::Average,
                     .fusion_bytes = options_.fusion_bytes,
                     .after_reduce = [this](std::span<const float> reduced) {
                       if (!detail::all_finite(reduced)) {
                         gradient_nonfinite_.store(true, std::memory_order_relaxed);
                       }
                     },
                     .pace_while_computing = options_.pace_polls});
  step_sums_ = std::make_unique<detail::StepSumsReduction>();
  // Every replica starts from rank 0's parameters, whatever each rank initialised.
  broadcast<float>(comm_, model_.parameters(), 0);
  if (options_.check) check_replicas("after the initial broadcast");
  origin_ = ReducerClock::now();
}

Trainer::~Trainer() = default;

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

void Trainer::check_replicas(const char* when) const {
  const auto hash = static_cast<std::int64_t>(fnv1a(model_.parameters()));
  std::vector<std::int64_t> all(static_cast<std::size_t>(comm_.size()));
  allgather<std::int64_t>(comm_, std::span<const std::int64_t>(&hash, 1), all);
  for (int r = 1; r < comm_.size(); ++r) {
    if (all[static_cast<std::size_t>(r)] != all[0]) {
      throw Error(r,
                  fmt::format("check mode: the parameters of rank {} differ from rank 0's {} "
                              "(hash {:016x} vs {:016x}); the replicas have diverged",
                              r, when, static_cast<std::uint64_t>(all[static_cast<std::size_t>(r)]),
                              static_cast<std::uint64_t>(all[0])),
                  true);
    }
  }
}

NonFiniteError Trainer::gradient_error(std::int64_t step) const {
  // Off the fast path (the step is lost anyway): walk the layers in forward order and name
  // the first tensor holding a NaN or Inf, the one nearest the input, where a bad sample
  // enters. Every rank scans the same averaged bits, so every rank writes the same message.
  const std::span<const float> gradients = model_.gradients();
  int first_layer = -1;
  std::string where;
  std::size_t bad_tensors = 0;
  for (std::size_t i = 0; i < model_.layer_count(); ++i) {
    std::size_t offset = model_.layer_range(i).offset;
    for (const nn::TensorShape& shape : model_.layer(i).parameter_shapes()) {
      const std::size_t size = shape.rows * shape.cols;
      const std::size_t bad = detail::count_nonfinite(gradients.subspan(offset, size));
      offset += size;
      if (bad == 0) continue;
      ++bad_tensors;
      if (first_layer >= 0) continue;
      first_layer = static_cast<int>(i);
      where = fmt::format("in layer {} ({}, {}): {} of {} values are NaN or Inf", i,
                          describe_layer(model_.layer(i)), shape.name, bad, size);
    }
  }
  if (first_layer < 0) where = "(found in the reduction, gone from the arena)";
  if (bad_tensors == 2) where += "; 1 more tensor holds some";
  if (bad_tensors > 2) where += fmt::format("; {} more tensors hold some", bad_tensors - 1);
  return NonFiniteError(step, first_layer, -1,
                        fmt::format("step {}: non-finite averaged gradient {}", step, where));
}

StepResult Trainer::step(const Batch& batch, std::int64_t steps_per_epoch) {
  return run_step(batch, steps_per_epoch, 0.0, {});
}

StepResult Trainer::run_step(const Batch& batch, std::int64_t steps_per_epoch, double data_seconds,
                             std::string data_error) {
  StepTimes times;
  times.data = data_seconds;
  const auto t0 = ReducerClock::now();
  const std::int64_t global_step = position_.global_step;
  // Stall reports of this step's collectives name it (the reducer adds its buckets).
  comm_.set_stall_context({.step = global_step});
  reducer_->set_stall_step(global_step);
  // A malformed batch is this rank's problem only: agreed like a failed fetch, so that
  // the other ranks are not left waiting.
  if (data_error.empty() && (batch.real > static_cast<std::size_t>(batch.x.cols()) ||
                             batch.labels.size() != static_cast<std::size_t>(batch.x.cols()))) {
    data_error = fmt::format("Trainer::step: batch of {} columns, {} labels, {} real",
                             batch.x.cols(), batch.labels.size(), batch.real);
  }

  // Forward and loss; the loss gradient is that of this rank's mean (over its real
  // samples); padded columns get zero gradient and no loss. A rank without a batch
  // (data_error) skips them but still joins the step's collectives.
  const bool have_batch = data_error.empty();
  nn::LossResult loss{};
  if (have_batch) {
    const nn::Matrix<float>& logits = model_.forward(batch.x);
    loss = nn::softmax_cross_entropy<float>(logits, batch.labels, dlogits_, batch.real,
                                            batch.real > 0 ? static_cast<double>(batch.real) : 1.0);
  }
  const auto t1 = ReducerClock::now();

  // The one small allreduce of the step: sums of loss, correct and real count, of the ranks
  // whose batch failed, and which ranks' loss is not finite (a count, and the lowest such
  // rank by a minimum). A NaN or Inf in any rank's loss makes the summed loss non-finite on
  // every rank alike, so all ranks decide the same without another message; the rank fields
  // only name the culprit. A data error on one rank stops every rank at this allreduce
  // instead of leaving the others waiting in the next collective.
  //
  // It sits after the gradient reduction when the global real count is known in advance
  // (batch.global_real), so that the step synchronises the ranks once: they arrive at the
  // gradient reduction with whatever skew forward and backward gave them and leave it
  // together, so the metrics allreduce right after costs only its latency. Otherwise it
  // must come first, because the count weighs the gradient.
  detail::StepSums sums{.loss_sum = loss.loss_sum,
                        .correct = static_cast<double>(loss.correct),
                        .count = static_cast<double>(loss.count),
                        .failed_ranks = have_batch ? 0.0 : 1.0};
  if (!std::isfinite(loss.loss_sum)) {
    sums.bad_ranks = 1.0;
    sums.first_bad_rank = static_cast<double>(comm_.rank());
  }
  const bool count_known = batch.global_real > 0;
  // Every rank sees the same sums: all call agree(), which throws the same Error on every
  // rank, naming the lowest failing rank and its cause (file, dataset, what failed).
  auto check_data = [&] {
    if (sums.failed_ranks > 0.0) agree(comm_, data_error);
  };
  if (!count_known) {
    step_sums_->reduce(comm_, sums);
    check_data();
  }
  const auto t2 = ReducerClock::now();
  const double global_real = count_known ? static_cast<double>(batch.global_real) : sums.count;

  StepResult result;
  result.learning_rate =
      options_.schedule.rate(global_step, std::max<std::int64_t>(1, steps_per_epoch), comm_.size());
  auto skip_or_throw = [&](NonFiniteError error) {
    if (!options_.skip_nonfinite) throw error;
    result.skipped = true;
    result.nonfinite = error.what();
  };
  auto check_loss = [&] {
    if (std::isfinite(sums.loss_sum) && sums.bad_ranks == 0.0) return;
    const auto bad_ranks = static_cast<int>(sums.bad_ranks);
    const int first = bad_ranks > 0 ? static_cast<int>(sums.first_bad_rank) : -1;
    std::string who = first < 0 ? std::string("summed over the ranks (overflow)")
                                : fmt::format("on rank {}", first);
    if (bad_ranks > 1) {
      who += fmt::format(" and {} more rank{}", bad_ranks - 1, bad_ranks > 2 ? "s" : "");
    }
    skip_or_throw(NonFiniteError(global_step, -1, first,
                                 fmt::format("step {}: non-finite loss {}", global_step, who)));
  };
  // Known before backward: no backward, the gradient of a non-finite loss is of no use.
  if (!count_known) check_loss();
  const bool backward = global_real > 0 && !result.skipped;
  auto t3 = t2;
  auto t4 = t2;
  if (backward) {
    // Weigh by real counts: after the Average over k ranks, rank r's gradient of
    // (its loss sum / its count) scaled by k count_r / global_count contributes
    // loss_sum_r / global_count, so the result is the gradient of the global mean.
    // Exactly 1 when every rank holds the same count: no rescaling, no rounding.
    const double scale =
        static_cast<double>(comm_.size()) * static_cast<double>(loss.count) / global_real;
    if (scale != 1.0) dlogits_ *= static_cast<float>(scale);

    // Backward; from here until wait_all() returns only the progress thread calls MPI.
    gradient_nonfinite_.store(false, std::memory_order_relaxed);
    if (!have_batch) {
      // Only when the count was known in advance: the other ranks are already reducing,
      // so join with a zero gradient; the metrics allreduce then stops every rank.
      std::fill(model_.gradients().begin(), model_.gradients().end(), 0.0f);
    } else if (options_.overlap) {
      model_.backward(dlogits_, [this](std::size_t, nn::ArenaRange range) {
        reducer_->submit_prefix(range.end());
      });
    } else {
      model_.backward(dlogits_);
    }
    reducer_->submit_prefix(model_.parameter_count());
    t3 = ReducerClock::now();
    reducer_->wait_all();
    t4 = ReducerClock::now();
  }
  auto t5 = t4;
  if (count_known) {
    step_sums_->reduce(comm_, sums);
    t5 = ReducerClock::now();
    check_data();
    // The sums are the same bits on every rank, so is this decision.
    if (sums.count != global_real) {
      throw Error(-1,
                  fmt::format("Trainer::step: step {} was announced with {} real samples over "
                              "all ranks, but the ranks' batches hold {}: a batch source's "
                              "real_per_step() disagrees with its batches",
                              global_step, batch.global_real, sums.count),
                  true);
    }
    check_loss();  // the loss's verdict comes first: it explains a non-finite gradient
  }
  const auto global_count = static_cast<std::int64_t>(sums.count);
  result.samples = global_count;
  result.loss = global_count > 0 ? sums.loss_sum / sums.count : 0.0;
  result.accuracy = global_count > 0 ? sums.correct / sums.count : 0.0;
  auto t6 = t5;
  if (backward && !result.skipped) {
    if (gradient_nonfinite_.load(std::memory_order_relaxed)) {
      skip_or_throw(gradient_error(global_step));
    } else {
      optimizer_.step(model_.parameters(), model_.gradients(), result.learning_rate);
    }
    t6 = ReducerClock::now();
  }
  ++position_.global_step;

  times.forward = seconds_between(t0, t1);
  times.exposed_comm = seconds_between(t1, t2) + seconds_between(t3, t5);
  times.backward = seconds_between(t2, t3);
  times.optimizer = seconds_between(t5, t6);
  times.total = data_seconds + seconds_between(t0, t6);
  times_.add(times);

  if (options_.record_timeline) {
    auto us = [this](ReducerClock::time_point t) {
      return std::chrono::duration<double, std::micro>(t - origin_).count();
    };
    auto add = [&](EventKind kind, ReducerClock::time_point a, ReducerClock::time_point b) {
      events_.push_back(
          {.kind = kind, .step = global_step, .start_us = us(a), .duration_us = us(b) - us(a)});
    };
    add(EventKind::Forward, t0, t1);
    if (count_known) {
      add(EventKind::Metrics, t4, t5);
    } else {
      add(EventKind::Metrics, t1, t2);
    }
    if (backward) {
      add(EventKind::Backward, t2, t3);
      const auto& timings = reducer_->timings();
      for (const ReductionUnit& unit : reducer_->units()) {
        const BucketTiming& t = timings[unit.first];
        events_.push_back({.kind = EventKind::Allreduce,
                           .step = global_step,
                           .start_us = us(t.started),
                           .duration_us = us(t.finished) - us(t.started),
                           .bytes = static_cast<std::int64_t>(unit.bytes),
                           .buckets = static_cast<std::int64_t>(unit.count),
                           .algorithm = t.algorithm});
      }
      add(EventKind::Wait, t3, t4);
      add(EventKind::Optimizer, t5, t6);
    }
  }
  return result;
}

std::int64_t Trainer::start_epoch(BatchSource& source) {
  // Until this epoch is ready, none is begun: a failure below leaves train_step() refusing.
  epoch_source_ = nullptr;
  const auto steps = static_cast<std::int64_t>(source.steps_per_epoch());
  // Each step is collective: ranks with different step counts, or at different places
  // of the epoch, would hang. One tiny gather per epoch names the rank that differs.
  {
    const std::array<std::int64_t, 3> mine = {steps, position_.epoch, position_.step_in_epoch};
    std::vector<std::int64_t> all(3 * static_cast<std::size_t>(comm_.size()));
    allgather<std::int64_t>(comm_, mine, all);
    for (int r = 1; r < comm_.size(); ++r) {
      const std::size_t at = 3 * static_cast<std::size_t>(r);
      if (all[at] != all[0]) {
        throw InvalidArgument(r,
                              fmt::format("Trainer::start_epoch: rank {}'s batch source has {} "
                                          "steps per epoch, rank 0's has {}",
                                          r, all[at], all[0]),
                              true);
      }
      if (all[at + 1] != all[1] || all[at + 2] != all[2]) {
        throw InvalidArgument(r,
                              fmt::format("Trainer::start_epoch: rank {} is at epoch {} step {}, "
                                          "rank 0 at epoch {} step {}",
                                          r, all[at + 1], all[at + 2], all[1], all[2]),
                              true);
      }
    }
  }
  if (position_.step_in_epoch > steps) {  // the same on every rank, checked just above
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
  // The global real count of every step, when every rank's source knows its own in
  // advance: one allreduce per epoch, so that each step can synchronise only once (see
  // run_step). Entry `steps` counts the ranks that knew, entry `steps + 1` the ranks whose
  // source failed to start: a source is local, so such a failure rides on this allreduce
  // and is then agreed (the same Error on every rank, no rank left waiting in it).
  const auto n = static_cast<std::size_t>(steps);
  std::vector<std::int64_t> global_real(n + 2, 0);
  {
    std::string source_error;
    try {
      source.start_epoch(static_cast<std::uint64_t>(position_.epoch));
      const std::vector<std::size_t> mine = source.real_per_step();
      if (mine.size() == n) {
        std::copy(mine.begin(), mine.end(), global_real.begin());
        global_real[n] = 1;
      }
    } catch (const Error& e) {
      source_error = fmt::format("starting epoch {} of the batch source: {}", position_.epoch,
                                 e.cause());
    } catch (const std::exception& e) {
      source_error = fmt::format("starting epoch {} of the batch source: {}", position_.epoch,
                                 e.what());
    }
    global_real[n + 1] = source_error.empty() ? 0 : 1;
    allreduce<std::int64_t>(comm_, global_real, ReduceOp::Sum, Algorithm::Auto);
    if (global_real[n + 1] > 0) agree(comm_, source_error);
    if (global_real[n] != comm_.size()) global_real.assign(global_real.size(), 0);
  }
  // A resumed run skips the batches its epoch already trained on (the order is a
  // function of the seed and the epoch, so these are the same batches). Every rank
  // resumes at the same step, so all agree on a failure here (once per resumed epoch).
  if (position_.step_in_epoch > 0) {
    std::string skip_error;
    for (std::int64_t s = 0; s < position_.step_in_epoch && skip_error.empty(); ++s) {
      skip_error = fetch(source, batch_, s, steps);
    }
    agree(comm_, skip_error);
  }
  epoch_real_.assign(global_real.begin(), global_real.begin() + steps);
  epoch_steps_ = steps;
  epoch_source_ = &source;
  return steps - position_.step_in_epoch;
}

StepResult Trainer::train_step(BatchSource& source) {
  if (epoch_source_ != &source) {
    throw InvalidArgument(
        "Trainer::train_step: no epoch of this batch source is begun (call start_epoch())");
  }
  const auto s = static_cast<std::size_t>(position_.step_in_epoch);
  const auto t0 = ReducerClock::now();
  StepResult result;
  try {
    std::string data_error = fetch(source, batch_, position_.step_in_epoch, epoch_steps_);
    batch_.global_real = epoch_real_[s];
    const auto t1 = ReducerClock::now();
    result = run_step(batch_, epoch_steps_, seconds_between(t0, t1), std::move(data_error));
  } catch (...) {
    // The source has moved past this batch while the position has not: only a new
    // start_epoch() brings them back in line.
    epoch_source_ = nullptr;
    throw;
  }
  if (options_.record_timeline) {
    const double a = std::chrono::duration<double, std::micro>(t0 - origin_).count();
    events_.push_back({.kind = EventKind::Data,
                       .step = position_.global_step - 1,
                       .start_us = a,
                       .duration_us = times_.all().back().data * 1e6});
  }
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

EpochResult Trainer::train_epoch(BatchSource& source) {
  const auto start = ReducerClock::now();
  const std::int64_t steps = start_epoch(source);
  double loss_sum = 0.0;
  double correct = 0.0;
  EpochResult result;
  for (std::int64_t s = 0; s < steps; ++s) {
    const StepResult r = train_step(source);
    ++result.steps;
    if (r.skipped) {
      ++result.skipped_steps;
      continue;
    }
    loss_sum += r.loss * static_cast<double>(r.samples);
    correct += r.accuracy * static_cast<double>(r.samples);
    result.samples += r.samples;
  }
  result.loss = result.samples > 0 ? loss_sum / static_cast<double>(result.samples) : 0.0;
  result.accuracy = result.samples > 0 ? correct / static_cast<double>(result.samples) : 0.0;
  result.seconds = seconds_between(start, ReducerClock::now());
  return result;
}

EpochResult Trainer::evaluate(BatchSource& source) {
  const auto start = ReducerClock::now();
  // Evaluation restarts the source: an epoch of it begun for training cannot go on.
  if (&source == epoch_source_) epoch_source_ = nullptr;
  // Local loop, no collective inside: a rank with a smaller share simply finishes first.
  // The 4th sum counts the ranks whose source failed (to start, or to read): such a rank
  // stops reading but still joins the allreduce, and then every rank throws the same
  // agreed Error (see run_step).
  std::array<double, 4> sums = {0.0, 0.0, 0.0, 0.0};
  std::string data_error;
  nn::Matrix<float> grad;
  EpochResult result;
  Batch batch;
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
  } catch (const Error& e) {
    data_error = fmt::format("evaluation batch {}: {}", result.steps, e.cause());
  } catch (const std::exception& e) {
    data_error = fmt::format("evaluation batch {}: {}", result.steps, e.what());
  }
  sums[3] = data_error.empty() ? 0.0 : 1.0;
  // Not a training step: stall reports name no step here. Recursive doubling: watched.
  comm_.set_stall_context({});
  allreduce<double>(comm_, sums, ReduceOp::Sum, Algorithm::RecursiveDoubling);
  if (sums[3] > 0.0) agree(comm_, data_error);
  result.samples = static_cast<std::int64_t>(sums[2]);
  result.loss = sums[2] > 0 ? sums[0] / sums[2] : 0.0;
  result.accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
  const auto end = ReducerClock::now();
  result.seconds = seconds_between(start, end);
  if (options_.record_timeline) {
    const double a = std::chrono::duration<double, std::micro>(start - origin_).count();
    const double b = std::chrono::duration<double, std::micro>(end - origin_).count();
    events_.push_back({.kind = EventKind::Evaluate,
                       .step = position_.global_step,
                       .start_us = a,
                       .duration_us = b - a});
  }
  return result;
}

}  // namespace ringdp::train
