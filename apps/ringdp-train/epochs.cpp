#include "epochs.hpp"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

#include "ringdp/train/loader_source.hpp"

namespace ringdp_train {
namespace {

namespace train = ringdp::train;

// The warning for a step skipped for NaN or Inf: the same verdict on every rank; rank 0
// says it once per skipped step.
std::string skip_warning(const train::StepResult& r) {
  constexpr std::string_view kPrefix = "ringdp: ";
  std::string_view what = r.nonfinite;
  if (what.starts_with(kPrefix)) what.remove_prefix(kPrefix.size());
  return fmt::format("warning    {}: step skipped, no update on any rank (--skip-nonfinite)", what);
}

// "epoch  3/10  train loss ... acc ...  test loss ... acc ...  0.52 s  15494 samples/s".
std::string epoch_line(const Options& o, std::int64_t epoch, const train::MetricsRow& row,
                       const train::EpochResult& e, bool tested) {
  const std::string test = tested ? fmt::format("  test loss {:.4f} acc {:6.2f}%", row.test_loss,
                                                100.0 * row.test_accuracy)
                                  : std::string();
  const std::string skipped =
      e.skipped_steps > 0 ? fmt::format("  ({} skipped: NaN/Inf)", e.skipped_steps) : "";
  return fmt::format(
      "epoch {:>{}}/{}  train loss {:.4f} acc {:6.2f}%{}  {:.2f} s  {:>8.0f} "
      "samples/s{}",
      epoch, std::to_string(o.epochs).size(), o.epochs, e.loss, 100.0 * e.accuracy, test, e.seconds,
      row.samples_per_second, skipped);
}

// What each step and each epoch report, and the totals of the run.
class EpochLoop {
 public:
  EpochLoop(const Options& o, train::Trainer& trainer, train::Checkpointer& checkpoints,
            MetricsLog& metrics, Console& out, std::int64_t steps_per_epoch)
      : o_(o),
        trainer_(trainer),
        checkpoints_(checkpoints),
        metrics_(metrics),
        out_(out),
        steps_(steps_per_epoch),
        first_step_(trainer.position().global_step) {}

  // After step `step` (1-based) of `epoch` (0-based); `so_far` is the epoch's up to it.
  void after_step(std::int64_t epoch, std::int64_t step, const train::StepResult& r,
                  const train::EpochResult& so_far) {
    if (r.skipped) out_.line(skip_warning(r));
    const std::int64_t global_step = trainer_.position().global_step;
    if (metrics_.steps()) {
      train::EpochTally one;
      one.add(r);
      metrics_.write(train::metrics_row("step", epoch + 1, global_step, one.result(r.times.total)));
    }
    const double elapsed = totals_.train_seconds + so_far.seconds;
    const double per_step =
        elapsed > 0 ? elapsed / static_cast<double>(global_step - first_step_) : 0.0;
    const std::int64_t total_steps = static_cast<std::int64_t>(o_.epochs) * steps_;
    out_.progress({.epoch = epoch + 1,
                   .epochs = o_.epochs,
                   .step = step,
                   .steps = steps_,
                   .loss = so_far.loss,
                   .accuracy = so_far.accuracy,
                   .samples_per_second = so_far.seconds > 0
                                             ? static_cast<double>(so_far.samples) / so_far.seconds
                                             : 0.0,
                   .eta_seconds = per_step * static_cast<double>(total_steps - global_step)});
    checkpoints_.after_step();
  }

  // After the last step of `epoch` (0-based): its evaluation (when `test`), line, metrics
  // row and checkpoint.
  void after_epoch(std::int64_t epoch, const train::EpochResult& e, train::BatchSource* test) {
    totals_.train_seconds += e.seconds;
    totals_.samples += e.samples;
    totals_.skipped_steps += e.skipped_steps;
    // The last step finished the epoch (and, in check mode, compared the replicas).
    train::MetricsRow row =
        train::metrics_row("epoch", epoch + 1, trainer_.position().global_step, e);
    if (test != nullptr) {
      totals_.test = trainer_.evaluate(*test);
      totals_.tested = true;
      row.test_loss = totals_.test.loss;
      row.test_accuracy = totals_.test.accuracy;
    }
    out_.line(epoch_line(o_, epoch + 1, row, e, test != nullptr));
    metrics_.write(row);
    metrics_.agree();
    checkpoints_.after_epoch(epoch + 1 == o_.epochs);
  }

  [[nodiscard]] RunTotals totals() const {
    RunTotals t = totals_;
    t.steps = trainer_.position().global_step - first_step_;
    return t;
  }

 private:
  const Options& o_;
  train::Trainer& trainer_;
  train::Checkpointer& checkpoints_;
  MetricsLog& metrics_;
  Console& out_;
  std::int64_t steps_;
  std::int64_t first_step_;
  RunTotals totals_;
};

}  // namespace

RunTotals train_epochs(const Options& o, train::Trainer& trainer, Data& data,
                       train::Checkpointer& checkpoints, MetricsLog& metrics, Console& out) {
  train::LoaderSource source(data.train);
  std::optional<train::LoaderSource> test;
  if (data.test) test.emplace(*data.test);
  EpochLoop loop(o, trainer, checkpoints, metrics, out,
                 static_cast<std::int64_t>(data.train.steps_per_epoch()));
  for (std::int64_t epoch = trainer.position().epoch; epoch < o.epochs; ++epoch) {
    // The trainer begins the epoch (a resumed one after the steps its checkpoint had done:
    // the order is a function of the seed and the epoch), then steps to its end. A data
    // error on any rank becomes the same Error on every rank, agreed within the step.
    const std::int64_t done = trainer.position().step_in_epoch;
    const train::EpochResult e = trainer.train_epoch(
        source, [&](const train::StepResult& r, const train::EpochResult& so_far) {
          loop.after_step(epoch, done + so_far.steps, r, so_far);
        });
    loop.after_epoch(epoch, e, test ? &*test : nullptr);
  }
  return loop.totals();
}

}  // namespace ringdp_train
