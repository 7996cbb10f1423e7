// The training run: the job's parts, resume, the header, the epochs, the outputs and the
// summary.

#include "run.hpp"

#include <mpi.h>

#include <array>
#include <chrono>
#include <optional>

#include "console.hpp"
#include "epochs.hpp"
#include "metrics_log.hpp"
#include "parallelism.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/train/checkpointer.hpp"
#include "ringdp/train/timeline.hpp"
#include "ringdp/train/trainer.hpp"
#include "run_info.hpp"
#include "setup.hpp"
#include "threads.hpp"

namespace ringdp_train {
namespace {

namespace train = ringdp::train;
using Clock = std::chrono::steady_clock;

// --resume: the trainer's state from the checkpoint (every rank the same, or the same
// error on every rank). nullopt: a fresh run.
std::optional<train::Resumed> resume(const Options& o, train::Checkpointer& checkpoints,
                                     const Data& data) {
  if (!o.resume_given) return std::nullopt;
  return checkpoints.resume(o.resume, static_cast<std::int64_t>(data.train.steps_per_epoch()));
}

void print_header(Console& out, const Options& o, const RunInfo& info, const Data& data,
                  const std::optional<train::Resumed>& resumed, const train::TrainPosition& p) {
  for (const std::string& line : header_lines(info, o)) out.line(line);
  if (!data.no_test.empty()) out.line("note: no test evaluation: " + data.no_test);
  if (resumed) {
    for (const std::string& line : resume_lines(*resumed, p)) out.line(line);
  }
}

// The timeline (--timeline) and the metrics file under their final names.
void write_outputs(const ringdp::Communicator& comm, const Options& o,
                   const train::Trainer& trainer, MetricsLog& metrics) {
  if (!o.timeline.empty()) train::write_chrome_trace(comm, o.timeline, trainer.timeline());
  metrics.close();
}

// The final summary; the time of each part of the steps is the mean over the ranks (one
// small allreduce).
void print_summary(const ringdp::Communicator& comm, Console& out, const Options& o,
                   const RunInfo& info, const RunTotals& totals, const train::Trainer& trainer,
                   const std::string& checkpoint, double wall_seconds) {
  Summary summary;
  summary.wall_seconds = wall_seconds;
  summary.train_seconds = totals.train_seconds;
  summary.samples = totals.samples;
  summary.steps = totals.steps;
  summary.skipped_steps = totals.skipped_steps;
  summary.tested = totals.tested;
  summary.test = totals.test;
  summary.checkpoint = checkpoint;
  train::StepTimes& t = summary.times;
  t = trainer.times().totals();
  std::array<double, 5> parts = {t.data, t.forward, t.backward, t.exposed_comm, t.optimizer};
  ringdp::allreduce<double>(comm, parts, ringdp::ReduceOp::Average,
                            ringdp::Algorithm::RecursiveDoubling);
  t = {.data = parts[0],
       .forward = parts[1],
       .backward = parts[2],
       .exposed_comm = parts[3],
       .optimizer = parts[4]};
  for (const std::string& line : summary_lines(summary, info, o)) out.always(line);
}

}  // namespace

void run(const Options& o) {
  const auto wall_start = Clock::now();
  ringdp::Communicator comm(MPI_COMM_WORLD);
  if (o.check) comm.set_check_mode(true);
  Console out(comm.rank() == 0, o.quiet, o.progress, o.progress_interval);

  // --tp/--pp: the data is sharded over the data group (one rank per replica), so that
  // every rank of a replica reads the same batches.
  const std::unique_ptr<ringdp::parallel::Grid> grid = make_grid(comm, o);
  const ringdp::Communicator& data_ranks = grid ? grid->data() : comm;
  Data data(data_ranks, o);
  Model model(comm, o, data.train, grid.get());
  const std::unique_ptr<train::Trainer> made = make_trainer(comm, data_ranks, model, o);
  train::Trainer& trainer = *made;
  const RunInfo info =
      describe_run(comm, o, data.train, data.test.get(), model.full_parameter_count(), trainer);
  const std::vector<std::string> layout = parallelism_lines(comm, o, grid.get(), model, trainer);
  train::Checkpointer checkpoints(trainer, checkpoint_policy(o), run_identity(o, data, info));
  const std::optional<train::Resumed> resumed = resume(o, checkpoints, data);
  print_header(out, o, info, data, resumed, trainer.position());
  for (const std::string& line : layout) out.line(line);
  report_thread_layout(comm, trainer, out);

  MetricsLog metrics(comm, o, resumed ? trainer.position().global_step : -1);
  const RunTotals totals = train_epochs(o, trainer, data, checkpoints, metrics, out);
  write_outputs(comm, o, trainer, metrics);
  print_summary(comm, out, o, info, totals, trainer, checkpoints.last(),
                std::chrono::duration<double>(Clock::now() - wall_start).count());
}

}  // namespace ringdp_train
