// The training run: data, model, trainer, resume, the epoch loop with progress, metrics,
// checkpoints and the timeline.

#include "run.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>

#include "common/utc_time.hpp"
#include "console.hpp"
#include "ringdp/ringdp.hpp"
#include "run_info.hpp"

namespace ringdp_train {
namespace {

namespace data = ringdp::data;
namespace nn = ringdp::nn;
namespace train = ringdp::train;
using Clock = std::chrono::steady_clock;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

data::SamplingMode sampling_mode(const std::string& name) {
  if (name == "global") return data::SamplingMode::Global;
  if (name == "shard") return data::SamplingMode::Shard;
  return data::SamplingMode::Auto;
}

std::unique_ptr<nn::Optimizer<float>> make_optimizer(const Options& o, std::size_t size) {
  if (o.optimizer == "adam") {
    return std::make_unique<nn::Adam<float>>(size, nn::AdamOptions{.weight_decay = o.weight_decay});
  }
  return std::make_unique<nn::Sgd<float>>(
      size, nn::SgdOptions{
                .momentum = o.momentum, .nesterov = o.nesterov, .weight_decay = o.weight_decay});
}

train::LrSchedule make_schedule(const Options& o) {
  train::LrSchedule s;
  s.kind = train::parse_schedule(o.schedule);
  s.base_lr = o.lr;
  s.gamma = o.gamma;
  s.step_epochs = o.schedule_epochs > 0 ? o.schedule_epochs : 30.0;
  s.total_epochs = o.schedule_epochs > 0 ? o.schedule_epochs : static_cast<double>(o.epochs);
  s.scale_with_ranks = o.scale_lr;
  s.warmup_epochs = o.warmup_epochs;
  return s;
}

std::string joined_argv(const Options& o) {
  std::string s;
  for (const std::string& a : o.argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Seconds per part of a step, summed.
struct Breakdown {
  double data = 0, forward = 0, backward = 0, exposed = 0, optimizer = 0;
  void add(const train::StepTimes& t) {
    data += t.data;
    forward += t.forward;
    backward += t.backward;
    exposed += t.exposed_comm;
    optimizer += t.optimizer;
  }
};

// Sums over the steps of one epoch (or one metrics step row). A skipped step (NaN or Inf,
// --skip-nonfinite) is only counted: its loss may be NaN and it trained nothing.
struct Tally {
  double loss_sum = 0.0;
  double correct = 0.0;
  std::int64_t samples = 0;
  std::int64_t skipped = 0;
  void add(const train::StepResult& r) {
    if (r.skipped) {
      ++skipped;
      return;
    }
    loss_sum += r.loss * static_cast<double>(r.samples);
    correct += r.accuracy * static_cast<double>(r.samples);
    samples += r.samples;
  }
  [[nodiscard]] double loss() const {
    return samples > 0 ? loss_sum / static_cast<double>(samples) : 0.0;
  }
  [[nodiscard]] double accuracy() const {
    return samples > 0 ? correct / static_cast<double>(samples) : 0.0;
  }
};

train::MetricsRow make_row(const char* kind, std::int64_t epoch, std::int64_t step, double lr,
                           const Tally& tally, double seconds, const Breakdown& b) {
  train::MetricsRow row;
  row.kind = kind;
  row.epoch = epoch;
  row.step = step;
  row.learning_rate = lr;
  row.train_loss = tally.loss();
  row.train_accuracy = tally.accuracy();
  row.test_loss = kNaN;
  row.test_accuracy = kNaN;
  row.samples = tally.samples;
  row.seconds = seconds;
  row.samples_per_second = seconds > 0 ? static_cast<double>(tally.samples) / seconds : 0.0;
  row.data_s = b.data;
  row.forward_s = b.forward;
  row.backward_s = b.backward;
  row.exposed_comm_s = b.exposed;
  row.optimizer_s = b.optimizer;
  row.skipped_steps = tally.skipped;
  return row;
}

// Rank 0's metrics file; its write errors are remembered and agreed once per epoch, so
// that no per-step collective is needed and no rank goes on alone after a failure.
class Metrics {
 public:
  Metrics(const ringdp::Communicator& comm, const Options& o, std::int64_t resume_step)
      : comm_(comm), steps_(o.metrics_steps) {
    if (o.metrics.empty()) return;
    ringdp::agree_on(comm, [&] {
      if (comm.rank() == 0) csv_.emplace(o.metrics, resume_step);
    });
    active_ = true;
  }
  [[nodiscard]] bool steps() const noexcept { return active_ && steps_; }
  void write(const train::MetricsRow& row) {
    if (!csv_ || !error_.empty()) return;
    try {
      csv_->write(row);
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  void agree() {
    if (active_) ringdp::agree(comm_, error_);
  }
  void close() {
    if (!active_) return;
    agree();
    ringdp::agree_on(comm_, [&] {
      if (csv_) csv_->close();
    });
  }

 private:
  const ringdp::Communicator& comm_;
  bool steps_;
  bool active_ = false;
  std::optional<train::MetricsCsv> csv_;
  std::string error_;
};

}  // namespace

void run(const Options& o) {
  const auto wall_start = Clock::now();
  ringdp::Communicator comm(MPI_COMM_WORLD);
  if (o.check) comm.set_check_mode(true);
  const bool root = comm.rank() == 0;
  Console out(root, o.quiet, o.progress, o.progress_interval);

  // Compute threads: Eigen parallelises its GEMMs with OpenMP only when the library was
  // built with it; otherwise it stays single-threaded whatever is asked.
  Eigen::setNbThreads(o.threads);
  if (o.threads > 1 && Eigen::nbThreads() < o.threads) {
    out.line(
        fmt::format("note: --threads {}: this build runs Eigen single-threaded (no OpenMP); "
                    "using 1 thread per rank",
                    o.threads));
  }

  // --- data: every rank opens and validates the file; errors are agreed --------------
  const data::SamplingMode mode = sampling_mode(o.shuffle);
  const data::IoDriver driver = o.io == "mpiio" ? data::IoDriver::MpiIo : data::IoDriver::Serial;
  data::ShardedLoader train_loader(
      comm, data::H5Dataset(comm, o.data, {.names = data::DatasetNames::train(), .driver = driver}),
      data::SamplerOptions{.mode = mode,
                           .batch_size = o.batch,
                           .seed = o.seed,
                           .shuffle = true,
                           .virtual_ranks = o.virtual_ranks},
      data::LoaderOptions{.read_ahead = 4, .cache_bytes = o.cache_bytes});
  std::unique_ptr<data::ShardedLoader> test_loader;
  std::string no_test;
  try {
    data::H5Dataset test_set(
        comm, o.data,
        {.names = data::DatasetNames::test(), .classes = train_loader.classes(), .driver = driver});
    test_loader = std::make_unique<data::ShardedLoader>(
        comm, std::move(test_set),
        data::SamplerOptions{.mode = mode,
                             .batch_size = std::max<std::size_t>(o.batch, 256),
                             .seed = o.seed,
                             .shuffle = false,
                             .evaluation = true},
        data::LoaderOptions{.read_ahead = 2, .cache_bytes = o.cache_bytes});
  } catch (const ringdp::Error& e) {
    if (!e.collective()) throw;
    no_test = e.cause();  // every rank skips evaluation alike
  }

  // --- model, optimizer, trainer --------------------------------------------------------
  auto model = nn::Sequential<float>::from_spec(o.model);
  {
    std::string why;
    if (model.input_size() != train_loader.features()) {
      why = fmt::format(
          "model {} takes {} inputs but '{}' has {} features per sample (use "
          "--model {}-...)",
          o.model, model.input_size(), o.data, train_loader.features(), train_loader.features());
    } else if (model.output_size() < static_cast<std::size_t>(train_loader.classes())) {
      why = fmt::format("model {} has {} outputs but '{}' has {} classes", o.model,
                        model.output_size(), o.data, train_loader.classes());
    }
    ringdp::agree(comm, why);
  }
  model.initialize(o.seed);
  auto optimizer = make_optimizer(o, model.parameter_count());
  train::TrainerOptions trainer_options;
  trainer_options.bucket_bytes = o.bucket_bytes;
  trainer_options.algorithm = ringdp::parse_algorithm(o.algo);
  trainer_options.check = o.check;
  trainer_options.schedule = make_schedule(o);
  trainer_options.record_timeline = !o.timeline.empty();
  trainer_options.skip_nonfinite = o.skip_nonfinite;
  train::Trainer trainer(comm, model, *optimizer, trainer_options);
  const auto steps = static_cast<std::int64_t>(train_loader.steps_per_epoch());

  // --- resume -------------------------------------------------------------------------
  std::string resumed_from;
  std::vector<std::string> resume_warnings;
  if (o.resume_given) {
    std::string path = o.resume;
    if (path.empty()) {
      path = train::latest_checkpoint(comm, o.checkpoint_dir);
      ringdp::agree(comm, path.empty()
                              ? fmt::format("--resume: no checkpoint in '{}'", o.checkpoint_dir)
                              : std::string());
    }
    train::CheckpointExpectation expect;
    expect.model_spec = o.model;
    expect.ranks = comm.size();
    expect.parameter_count = model.parameter_count();
    expect.optimizer = optimizer->kind();
    for (const auto& s : optimizer->state()) expect.optimizer_state_names.push_back(s.name);
    const train::Checkpoint c = train::load_checkpoint(comm, path, &expect);
    ringdp::agree(comm, c.step_in_epoch >= steps
                            ? fmt::format("cannot resume from '{}': it is at step {} of an epoch "
                                          "of {} steps (different --batch or data?)",
                                          path, c.step_in_epoch, steps)
                            : std::string());
    std::copy(c.parameters.begin(), c.parameters.end(), model.parameters().begin());
    auto state = optimizer->state();
    for (std::size_t i = 0; i < state.size(); ++i) {
      std::copy(c.optimizer_state[i].values.begin(), c.optimizer_state[i].values.end(),
                state[i].data.begin());
    }
    optimizer->set_step_count(c.optimizer_steps);
    trainer.set_position(
        {.epoch = c.epoch, .step_in_epoch = c.step_in_epoch, .global_step = c.step});
    resumed_from = path;
    // These do not make the checkpoint unusable, but the run will no longer continue the
    // one that wrote it bit for bit: say so.
    const std::string sampling = data::to_string(train_loader.sampler().mode());
    if (c.batch_size != static_cast<std::int64_t>(o.batch)) {
      resume_warnings.push_back(fmt::format("batch {} (checkpoint: {})", o.batch, c.batch_size));
    }
    if (c.seed != o.seed)
      resume_warnings.push_back(fmt::format("seed {} (checkpoint: {})", o.seed, c.seed));
    if (c.sampling != sampling) {
      resume_warnings.push_back(fmt::format("sampling {} (checkpoint: {})", sampling, c.sampling));
    }
    if (c.virtual_ranks != o.virtual_ranks) {
      resume_warnings.push_back(
          fmt::format("virtual ranks {} (checkpoint: {})", o.virtual_ranks, c.virtual_ranks));
    }
  }

  // --- header -----------------------------------------------------------------------------
  const RunInfo info = describe_run(comm, o, train_loader, test_loader.get(), model, trainer);
  for (const std::string& line : header_lines(info, o)) out.line(line);
  if (!no_test.empty()) out.line(fmt::format("note: no test evaluation: {}", no_test));
  if (!resumed_from.empty()) {
    const auto& p = trainer.position();
    out.line(fmt::format("resumed    from {} (epoch {}, step {} of the epoch, global step {})",
                         resumed_from, p.epoch, p.step_in_epoch, p.global_step));
    for (const std::string& w : resume_warnings) {
      out.line(
          fmt::format("warning    {} differs: the run will not continue the checkpoint's run "
                      "bit for bit",
                      w));
    }
  }

  // --- the loop -------------------------------------------------------------------------
  Metrics metrics(comm, o, resumed_from.empty() ? -1 : trainer.position().global_step);
  train::LoaderSource source(train_loader);
  std::optional<train::LoaderSource> test_source;
  if (test_loader) test_source.emplace(*test_loader);
  Breakdown run_breakdown;
  std::int64_t run_samples = 0;
  std::int64_t run_skipped = 0;
  double train_seconds = 0.0;
  std::int64_t last_checkpoint_step = -1;
  std::string last_checkpoint;
  train::EpochResult last_test{};
  bool tested = false;
  const std::int64_t first_step = trainer.position().global_step;
  const std::int64_t total_steps = static_cast<std::int64_t>(o.epochs) * steps;
  auto save = [&]() {
    const auto& p = trainer.position();
    train::Checkpoint c;
    c.model_spec = o.model;
    c.ranks = comm.size();
    c.epoch = p.epoch;
    c.step_in_epoch = p.step_in_epoch;
    c.step = p.global_step;
    c.parameters.assign(model.parameters().begin(), model.parameters().end());
    c.optimizer = optimizer->kind();
    c.optimizer_steps = optimizer->step_count();
    for (const auto& s : optimizer->state())
      c.optimizer_state.push_back({s.name, {s.data.begin(), s.data.end()}});
    c.sampling = data::to_string(train_loader.sampler().mode());
    c.batch_size = static_cast<std::int64_t>(o.batch);
    c.virtual_ranks = o.virtual_ranks;
    c.seed = o.seed;
    c.metadata = {{"ringdp_version", RINGDP_VERSION_STRING},
                  {"git_hash", RINGDP_GIT_HASH},
                  {"date", ringdp::apps::utc_now()},
                  {"flags", joined_argv(o)},
                  {"data", o.data},
                  {"hosts", info.hosts_text}};
    last_checkpoint = train::save_checkpoint(comm, o.checkpoint_dir, c, o.keep);
    last_checkpoint_step = p.global_step;
  };

  for (std::int64_t epoch = trainer.position().epoch; epoch < o.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    // The trainer begins the epoch: it learns every step's global real count at once (so
    // that each step synchronises the ranks only once), and a resumed run skips the
    // batches its epoch already trained on (the order is a function of (seed, epoch), so
    // these are exactly the batches the checkpoint saw).
    const std::int64_t first = steps - trainer.start_epoch(source);

    Tally tally;
    Tally step_tally;
    Breakdown breakdown;
    double lr = 0.0;
    for (std::int64_t s = first; s < steps; ++s) {
      // The trainer fetches the batch: a data error on any rank (a corrupt chunk, say)
      // becomes the same Error on every rank, agreed within the step. After the epoch's
      // last step the trainer's position is at the next epoch.
      const train::StepResult r = trainer.train_step(source);
      const train::StepTimes t = trainer.times().all().back();
      breakdown.add(t);
      tally.add(r);
      lr = r.learning_rate;
      if (r.skipped) {
        // The same verdict on every rank; rank 0 says it once per skipped step.
        constexpr std::string_view kPrefix = "ringdp: ";
        std::string_view what = r.nonfinite;
        if (what.starts_with(kPrefix)) what.remove_prefix(kPrefix.size());
        out.line(
            fmt::format("warning    {}: step skipped, no update on any rank "
                        "(--skip-nonfinite)",
                        what));
      }
      const train::TrainPosition& p = trainer.position();
      if (metrics.steps()) {
        step_tally = {};
        step_tally.add(r);
        Breakdown b;
        b.add(t);
        metrics.write(make_row("step", epoch + 1, p.global_step, lr, step_tally, t.total, b));
      }
      const double elapsed = seconds_since(epoch_start);
      const double rate = elapsed > 0 ? static_cast<double>(tally.samples) / elapsed : 0.0;
      const double per_step =
          train_seconds + elapsed > 0
              ? (train_seconds + elapsed) / static_cast<double>(p.global_step - first_step)
              : 0.0;
      out.progress({.epoch = epoch + 1,
                    .epochs = o.epochs,
                    .step = s + 1,
                    .steps = steps,
                    .loss = tally.loss(),
                    .accuracy = tally.accuracy(),
                    .samples_per_second = rate,
                    .eta_seconds = per_step * static_cast<double>(total_steps - p.global_step)});
      if (!o.checkpoint_dir.empty() && o.checkpoint_every_steps > 0 &&
          p.global_step % o.checkpoint_every_steps == 0) {
        save();
      }
    }
    const double epoch_train_seconds = seconds_since(epoch_start);
    train_seconds += epoch_train_seconds;
    run_samples += tally.samples;
    run_skipped += tally.skipped;
    run_breakdown.data += breakdown.data;
    run_breakdown.forward += breakdown.forward;
    run_breakdown.backward += breakdown.backward;
    run_breakdown.exposed += breakdown.exposed;
    run_breakdown.optimizer += breakdown.optimizer;

    // The last step finished the epoch (and, in check mode, compared the replicas).
    const train::TrainPosition& p = trainer.position();

    train::MetricsRow row =
        make_row("epoch", epoch + 1, p.global_step, lr, tally, epoch_train_seconds, breakdown);
    std::string test_text;
    if (test_source) {
      last_test = trainer.evaluate(*test_source);
      tested = true;
      row.test_loss = last_test.loss;
      row.test_accuracy = last_test.accuracy;
      test_text = fmt::format("  test loss {:.4f} acc {:6.2f}%", last_test.loss,
                              100.0 * last_test.accuracy);
    }
    out.line(fmt::format(
        "epoch {:>{}}/{}  train loss {:.4f} acc {:6.2f}%{}  {:.2f} s  {:>8.0f} "
        "samples/s{}",
        epoch + 1, std::to_string(o.epochs).size(), o.epochs, tally.loss(),
        100.0 * tally.accuracy(), test_text, epoch_train_seconds, row.samples_per_second,
        tally.skipped > 0 ? fmt::format("  ({} skipped: NaN/Inf)", tally.skipped) : std::string()));
    metrics.write(row);
    metrics.agree();
    const bool epoch_due =
        o.checkpoint_every_epochs > 0 && (epoch + 1) % o.checkpoint_every_epochs == 0;
    if (!o.checkpoint_dir.empty() && (epoch_due || epoch + 1 == o.epochs) &&
        last_checkpoint_step != p.global_step) {
      save();
    }
  }
  // --- outputs and summary ----------------------------------------------------------------
  if (!o.timeline.empty()) {
    std::vector<train::TimelineEvent> events = trainer.timeline();
    std::sort(events.begin(), events.end(),
              [](const auto& a, const auto& b) { return a.start_us < b.start_us; });
    train::write_chrome_trace(comm, o.timeline, events);
  }
  metrics.close();

  Summary summary;
  summary.wall_seconds = seconds_since(wall_start);
  summary.train_seconds = train_seconds;
  summary.samples = run_samples;
  summary.steps = trainer.position().global_step - first_step;
  summary.skipped_steps = run_skipped;
  summary.tested = tested;
  summary.test = last_test;
  summary.checkpoint = last_checkpoint;
  // Mean over ranks of each part of the step time: one small allreduce.
  std::array<double, 6> parts = {run_breakdown.data,      run_breakdown.forward,
                                 run_breakdown.backward,  run_breakdown.exposed,
                                 run_breakdown.optimizer, train_seconds};
  ringdp::allreduce<double>(comm, parts, ringdp::ReduceOp::Average,
                            ringdp::Algorithm::RecursiveDoubling);
  summary.data = parts[0];
  summary.forward = parts[1];
  summary.backward = parts[2];
  summary.exposed = parts[3];
  summary.optimizer = parts[4];
  for (const std::string& line : summary_lines(summary, info, o)) out.always(line);
}

}  // namespace ringdp_train
