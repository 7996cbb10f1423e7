// The trainer's checkpoint state and a run's checkpoints: train::Checkpointer writes at the
// policy's steps and epoch ends, keeps the newest, and a run resumed from the newest (mid-
// epoch) continues bit for bit; Trainer::restore() refuses a checkpoint that does not fit
// and changes nothing; resuming without a checkpoint is the same error on every rank. And
// train_epoch()'s observer: it sees every step, and the epoch's result adds up its steps.

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/checkpointer.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using ringdp::Communicator;
using ringdp::test::all_ranks;
using namespace ringdp::train;

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

// A directory of this job's own (rank 0's pid): ctest runs the np1..np4 jobs side by side.
struct TempDir {
  fs::path path;
  explicit TempDir(const char* name) {
    int pid = static_cast<int>(::getpid());
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    path = fs::temp_directory_path() / (std::string(name) + "_" + std::to_string(pid));
    MPI_Barrier(MPI_COMM_WORLD);
  }
  ~TempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::error_code ec;
    if (rank == 0) fs::remove_all(path, ec);
  }
};

// A model, its optimizer (SGD with Nesterov momentum: state to restore) and a trainer on a
// cosine schedule over 3 epochs, on 50 samples in batches of 4 per rank.
ringdp::nn::Sequential<float> initialized_model(std::uint64_t seed) {
  auto model = ringdp::nn::Sequential<float>::from_spec("8-6-3");
  model.initialize(seed);
  return model;
}

struct Run {
  ringdp::nn::Sequential<float> model;
  ringdp::nn::Sgd<float> sgd;
  Trainer trainer;
  InMemorySource source;

  Run(const Communicator& world, const Eigen::MatrixXf& x, const std::vector<std::int32_t>& labels,
      std::uint64_t init_seed)
      : model(initialized_model(init_seed)),
        sgd(model.parameter_count(), {.momentum = 0.9, .nesterov = true}),
        trainer(world, model, sgd,
                {.schedule = {.kind = ScheduleKind::Cosine, .base_lr = 0.1, .total_epochs = 3}}),
        source(x, labels, world.rank(), world.size(), {.batch_size = 4, .seed = 3}) {}

  [[nodiscard]] std::int64_t steps() const {
    return static_cast<std::int64_t>(source.steps_per_epoch());
  }
};

RunIdentity identity(std::uint64_t seed = 3) {
  return {.model_spec = "8-6-3", .sampling = "global", .batch_size = 4, .seed = seed};
}

struct Stop {};  // ends a run mid-epoch, as a crash would

}  // namespace

TEST_CASE("checkpoints at the policy's steps and epochs; resumed mid-epoch, the same bits",
          "[train][checkpointer]") {
  const Communicator world(MPI_COMM_WORLD);
  const TempDir dir("ringdp_test_checkpointer");
  auto [x, labels] = ringdp::test::teacher_data(50, 8, 3, 2);

  Run straight(world, x, labels, 1);
  for (int e = 0; e < 3; ++e) straight.trainer.train_epoch(straight.source);

  // Checkpoints every 3 steps and at every epoch's end, the newest 2 kept; the run stops
  // at the first checkpoint inside epoch 1.
  Run first(world, x, labels, 1);
  const std::int64_t spe = first.steps();
  Checkpointer saving(
      first.trainer,
      {.directory = dir.path.string(), .every_epochs = 1, .every_steps = 3, .keep = 2}, identity());
  std::set<std::int64_t> written;
  std::int64_t stop_at = -1;
  auto observe = [&](const StepResult&, const EpochResult&) {
    saving.after_step();
    const std::int64_t g = first.trainer.position().global_step;
    if (g % 3 == 0) written.insert(g);
    if (g % 3 == 0 && g > spe && g < 2 * spe) {
      stop_at = g;
      throw Stop{};
    }
  };
  first.trainer.train_epoch(first.source, observe);
  saving.after_epoch(false);
  written.insert(spe);
  bool stopped = false;
  try {
    first.trainer.train_epoch(first.source, observe);
  } catch (const Stop&) {
    stopped = true;
  }
  CHECK(all_ranks(stopped && saving.last() == (dir.path / checkpoint_file_name(stop_at)).string()));
  std::set<std::string> expected;
  for (auto it = written.rbegin(); it != written.rend() && expected.size() < 2; ++it) {
    expected.insert(checkpoint_file_name(*it));
  }
  std::set<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    found.insert(entry.path().filename().string());
  }
  CAPTURE(spe, stop_at);
  CHECK(all_ranks(found == expected));

  // A fresh model (another initialisation), optimizer and trainer resume from the newest.
  Run resumed(world, x, labels, 99);
  Checkpointer loading(resumed.trainer, {.directory = dir.path.string()}, identity());
  const Resumed r = loading.resume("", resumed.steps());
  const TrainPosition& p = resumed.trainer.position();
  CHECK(all_ranks(r.path == saving.last() && r.differences.empty() && p.epoch == 1 &&
                  p.step_in_epoch == stop_at - spe && p.global_step == stop_at));
  while (resumed.trainer.position().epoch < 3) resumed.trainer.train_epoch(resumed.source);
  CHECK(all_ranks(copy(resumed.model.parameters()) == copy(straight.model.parameters())));
  CHECK(all_ranks(copy(resumed.sgd.state().at(0).data) == copy(straight.sgd.state().at(0).data)));
  CHECK(all_ranks(resumed.sgd.step_count() == straight.sgd.step_count()));

  // A run whose sample order differs from the checkpoint's is told so.
  Run other(world, x, labels, 1);
  Checkpointer reseeded(other.trainer, {.directory = dir.path.string()}, identity(5));
  const Resumed d = reseeded.resume(saving.last(), other.steps());
  CHECK(all_ranks(d.differences == std::vector<std::string>{"seed 5 (checkpoint: 3)"}));
}

TEST_CASE("restore refuses what does not fit; no checkpoint to resume is an error everywhere",
          "[train][checkpointer]") {
  const Communicator world(MPI_COMM_WORLD);
  const TempDir dir("ringdp_test_checkpointer_empty");
  auto [x, labels] = ringdp::test::teacher_data(50, 8, 3, 2);
  Run run(world, x, labels, 1);
  run.trainer.train_epoch(run.source);
  const std::vector<float> before = copy(run.model.parameters());
  const TrainPosition position = run.trainer.position();

  const Checkpoint good = run.trainer.capture();
  CHECK(all_ranks(good.parameters == before && good.step == position.global_step &&
                  good.ranks == world.size() && good.optimizer == "sgd" &&
                  good.optimizer_state.size() == 1));
  auto refused = [&](Checkpoint c) {
    std::fill(c.parameters.begin(), c.parameters.end(), 7.0f);
    try {
      run.trainer.restore(c);
    } catch (const ringdp::InvalidArgument&) {
      return copy(run.model.parameters()) == before &&
             run.trainer.position().global_step == position.global_step;
    }
    return false;
  };
  Checkpoint longer = good;
  longer.parameters.push_back(0.0f);
  Checkpoint adam = good;
  adam.optimizer = "adam";
  Checkpoint short_state = good;
  short_state.optimizer_state[0].values.pop_back();
  Checkpoint other_ranks = good;
  other_ranks.ranks = world.size() + 1;
  CHECK(
      all_ranks(refused(longer) && refused(adam) && refused(short_state) && refused(other_ranks)));

  // Nothing in the directory: the same InvalidArgument on every rank, no hang.
  Checkpointer checkpoints(run.trainer, {.directory = dir.path.string()}, identity());
  std::string message;
  bool collective = false;
  try {
    static_cast<void>(checkpoints.resume("", run.steps()));
  } catch (const ringdp::InvalidArgument& e) {
    message = e.cause();
    collective = e.collective();
  }
  CHECK(all_ranks(collective && message.find("no checkpoint in") != std::string::npos));

  // Without a directory nothing is written, and an explicit save() is refused.
  Checkpointer none(run.trainer, {}, identity());
  none.after_step();
  none.after_epoch(true);
  bool refused_save = false;
  try {
    static_cast<void>(none.save());
  } catch (const ringdp::InvalidArgument&) {
    refused_save = true;
  }
  CHECK(all_ranks(none.last().empty() && refused_save));
}

TEST_CASE("train_epoch's observer sees every step; the epoch's result adds up its steps",
          "[train][tally]") {
  const Communicator world(MPI_COMM_WORLD);
  auto [x, labels] = ringdp::test::teacher_data(50, 8, 3, 2);
  Run run(world, x, labels, 1);
  std::vector<StepResult> steps;
  std::vector<EpochResult> so_far;
  const EpochResult e =
      run.trainer.train_epoch(run.source, [&](const StepResult& r, const EpochResult& partial) {
        steps.push_back(r);
        so_far.push_back(partial);
      });

  bool counted = steps.size() == static_cast<std::size_t>(run.steps()) && e.steps == run.steps() &&
                 e.samples == 50 && e.skipped_steps == 0;
  double loss_sum = 0.0;
  std::int64_t samples = 0;
  StepTimes times;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    loss_sum += steps[i].loss * static_cast<double>(steps[i].samples);
    samples += steps[i].samples;
    times += steps[i].times;
    counted = counted && so_far[i].steps == static_cast<std::int64_t>(i) + 1 &&
              so_far[i].samples == samples && steps[i].times.total > 0.0;
  }
  CAPTURE(steps.size(), e.steps, e.samples);
  CHECK(all_ranks(counted));
  // The epoch's mean loss is that of its steps' samples (this file may contract a*b+c into
  // an FMA where the library does not: compared to rounding); the last partial result is
  // the epoch's own, bit for bit.
  const double mean = loss_sum / static_cast<double>(samples);
  CHECK(all_ranks(std::abs(e.loss - mean) <= 1e-12 * mean && so_far.back().loss == e.loss &&
                  so_far.back().accuracy == e.accuracy));
  CHECK(all_ranks(e.times.total == times.total && e.times.backward == times.backward &&
                  e.learning_rate == steps.back().learning_rate && e.seconds >= times.total));
  // The trainer's own record holds the same step times.
  CHECK(all_ranks(run.trainer.times().totals().total == times.total));
}
