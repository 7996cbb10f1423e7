// Trainer: sharded evaluation counts each sample once, check mode names a diverged rank,
// the initial broadcast, the learning-rate schedules, resume, the time record and timeline.

#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Communicator;
using ringdp::test::all_ranks;
using namespace ringdp::train;

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("evaluation counts every test sample exactly once with uneven shards",
          "[train][evaluate]") {
  const Communicator world(MPI_COMM_WORLD);
  for (const std::size_t n : {std::size_t{97}, std::size_t{103}, std::size_t{8}}) {
    if (n < static_cast<std::size_t>(world.size())) continue;
    CAPTURE(n);
    auto [x, labels] = ringdp::test::teacher_data(n, 12, 4, 5);
    auto model = ringdp::nn::Sequential<float>::from_spec("12-10-4");
    model.initialize(9);
    ringdp::nn::Sgd<float> sgd(model.parameter_count());
    Trainer trainer(world, model, sgd);
    InMemorySource shard(x, labels, world.rank(), world.size(),
                         {.batch_size = 6, .evaluation = true});

    // The shards tile 0..N-1: gather every rank's sample counts and indices.
    std::size_t real = 0;
    const auto mine = shard.order(0, &real);
    bool own_ok = real == mine.size();
    for (const auto i : mine)
      own_ok = own_ok &&
               i % static_cast<std::size_t>(world.size()) == static_cast<std::size_t>(world.rank());
    CHECK(all_ranks(own_ok));

    const EpochResult result = trainer.evaluate(shard);
    // Independent reference: the whole set at once on this rank, no sharding, no MPI.
    ringdp::nn::Matrix<float> grad;
    const auto& logits = model.forward(x);
    const auto expected = ringdp::nn::softmax_cross_entropy<float>(logits, labels, grad);
    CHECK(all_ranks(result.samples == static_cast<std::int64_t>(n)));
    CHECK(all_ranks(std::abs(result.loss - expected.mean_loss) <= 1e-6 * expected.mean_loss));
    CHECK(all_ranks(std::abs(result.accuracy - static_cast<double>(expected.correct) / n) < 1e-12));
  }
}

TEST_CASE("the trainer broadcasts rank 0's parameters and check mode names a diverged rank",
          "[train][check]") {
  const Communicator world(MPI_COMM_WORLD);
  auto model = ringdp::nn::Sequential<float>::from_spec("6-5-3");
  model.initialize(100 + static_cast<std::uint64_t>(world.rank()));
  ringdp::nn::Sgd<float> sgd(model.parameter_count());
  Trainer trainer(world, model, sgd, {.check = true});
  auto rank0 = ringdp::nn::Sequential<float>::from_spec("6-5-3");
  rank0.initialize(100);
  CHECK(all_ranks(copy(model.parameters()) == copy(rank0.parameters())));

  if (world.size() < 2) return;
  const int culprit = world.size() - 1;
  if (world.rank() == culprit) model.parameters()[3] += 1e-3f;
  int named = -1;
  bool collective = false;
  try {
    trainer.check_replicas("in the test");
  } catch (const ringdp::MismatchError& e) {
    named = e.rank();
    collective = e.collective() &&
                 e.cause().find("rank " + std::to_string(culprit) + " differ") != std::string::npos;
  }
  CHECK(all_ranks(named == culprit && collective));

  // Two diverged ranks: both named, the lowest as the error's rank.
  if (world.size() < 3) return;
  if (world.rank() == 1) model.parameters()[0] -= 1e-3f;
  std::string message;
  try {
    trainer.check_replicas("again");
  } catch (const ringdp::MismatchError& e) {
    named = e.rank();
    message = e.cause();
  }
  const std::string both = fmt::format("ranks 1,{} differ", culprit);
  CAPTURE(message);
  CHECK(all_ranks(named == 1 && message.find(both) != std::string::npos));
}

TEST_CASE("start_epoch names the ranks whose batch source or position differ", "[train][check]") {
  const Communicator world(MPI_COMM_WORLD);
  if (world.size() < 2) return;
  const int last = world.size() - 1;
  auto [x, labels] = ringdp::test::teacher_data(48, 6, 3, 1);
  auto model = ringdp::nn::Sequential<float>::from_spec("6-5-3");
  model.initialize(1);
  ringdp::nn::Sgd<float> sgd(model.parameter_count());
  Trainer trainer(world, model, sgd);
  struct Outcome {
    int rank = -2;
    bool collective = false;
    std::string message;
  };
  auto attempt = [&](InMemorySource& source) {
    Outcome o;
    try {
      trainer.start_epoch(source);
    } catch (const ringdp::InvalidArgument& e) {
      o = {e.rank(), e.collective(), e.cause()};
    }
    return o;
  };

  // The last rank's source has more (smaller) batches per epoch.
  InMemorySource uneven(x, labels, world.rank(), world.size(),
                        {.batch_size = world.rank() == last ? std::size_t{3} : std::size_t{4}});
  const Outcome steps = attempt(uneven);
  CAPTURE(steps.message);
  CHECK(all_ranks(steps.rank == last && steps.collective &&
                  steps.message.find(fmt::format("rank {}'s batch source has", last)) !=
                      std::string::npos));

  // The last rank is at another place of the run.
  InMemorySource even(x, labels, world.rank(), world.size(), {.batch_size = 4});
  if (world.rank() == last) trainer.set_position({.epoch = 1});
  const Outcome place = attempt(even);
  CAPTURE(place.message);
  CHECK(all_ranks(place.rank == last && place.collective &&
                  place.message.find(fmt::format("rank {} is at epoch 1", last)) !=
                      std::string::npos));
  trainer.set_position({});
  CHECK(all_ranks(trainer.start_epoch(even) == static_cast<std::int64_t>(even.steps_per_epoch())));
}

TEST_CASE("learning-rate schedules: constant, step, cosine, scaling and warm-up",
          "[train][schedule]") {
  LrSchedule constant{.base_lr = 0.1};
  CHECK(constant.rate(0, 10, 4) == 0.1);
  CHECK(constant.rate(999, 10, 4) == 0.1);

  LrSchedule step{.kind = ScheduleKind::Step, .base_lr = 0.1, .gamma = 0.5, .step_epochs = 2};
  CHECK(step.rate(19, 10, 1) == 0.1);         // epoch 1.9
  CHECK(step.rate(20, 10, 1) == 0.05);        // epoch 2
  CHECK(step.rate(45, 10, 1) == 0.1 * 0.25);  // epoch 4.5

  LrSchedule cosine{.kind = ScheduleKind::Cosine, .base_lr = 0.2, .total_epochs = 2};
  CHECK(cosine.rate(0, 10, 1) == Approx(0.2));
  CHECK(cosine.rate(10, 10, 1) == Approx(0.1));  // half-way: (1 + cos(pi/2)) / 2
  CHECK(cosine.rate(20, 10, 1) == Approx(0.0).margin(1e-15));

  // Goyal et al.: from the 1-rank rate to k times it over the warm-up, then k times it.
  LrSchedule goyal{.base_lr = 0.1, .scale_with_ranks = true, .warmup_epochs = 1};
  CHECK(goyal.rate(0, 10, 4) == Approx(0.1));
  CHECK(goyal.rate(5, 10, 4) == Approx(0.1 + 0.3 * 0.5));
  CHECK(goyal.rate(10, 10, 4) == Approx(0.4));
  CHECK(goyal.rate(100, 10, 4) == Approx(0.4));
  // Without scaling the warm-up starts from rate / warm-up steps.
  LrSchedule warm{.base_lr = 0.1, .warmup_epochs = 1};
  CHECK(warm.rate(0, 10, 4) == Approx(0.01));
  CHECK(warm.rate(10, 10, 4) == Approx(0.1));

  CHECK(parse_schedule("cosine") == ScheduleKind::Cosine);
  CHECK_THROWS_AS(parse_schedule("linear"), ringdp::InvalidArgument);
  CHECK_THROWS_AS((LrSchedule{.base_lr = -1}.rate(0, 1, 1)), ringdp::InvalidArgument);
}

TEST_CASE("a run resumed from its state continues bit-identically", "[train][resume]") {
  const Communicator world(MPI_COMM_WORLD);
  auto [x, labels] = ringdp::test::teacher_data(50, 8, 3, 2);
  auto make_source = [&] {
    return InMemorySource(x, labels, world.rank(), world.size(), {.batch_size = 4, .seed = 3});
  };
  const TrainerOptions options{
      .schedule = {.kind = ScheduleKind::Cosine, .base_lr = 0.1, .total_epochs = 3}};
  const ringdp::nn::SgdOptions sgd_options{.momentum = 0.9, .nesterov = true};

  // Straight: 3 epochs.
  auto straight = ringdp::nn::Sequential<float>::from_spec("8-6-3");
  straight.initialize(1);
  ringdp::nn::Sgd<float> straight_sgd(straight.parameter_count(), sgd_options);
  {
    Trainer trainer(world, straight, straight_sgd, options);
    auto source = make_source();
    for (int e = 0; e < 3; ++e) trainer.train_epoch(source);
  }

  // Interrupted after epoch 1 plus 2 steps; a new model, optimizer and trainer restore
  // the saved state (the arena, the momentum, the position) and finish.
  auto first = ringdp::nn::Sequential<float>::from_spec("8-6-3");
  first.initialize(1);
  ringdp::nn::Sgd<float> first_sgd(first.parameter_count(), sgd_options);
  TrainPosition saved;
  std::vector<float> saved_parameters;
  std::vector<float> saved_momentum;
  std::int64_t saved_count = 0;
  {
    Trainer trainer(world, first, first_sgd, options);
    auto source = make_source();
    trainer.train_epoch(source);
    source.start_epoch(1);
    Batch b;
    for (int s = 0; s < 2; ++s) {
      source.next(b);
      trainer.step(b, static_cast<std::int64_t>(source.steps_per_epoch()));
    }
    saved = trainer.position();
    saved.step_in_epoch = 2;  // step() leaves the epoch bookkeeping to the caller
    saved_parameters = copy(first.parameters());
    saved_momentum = copy(first_sgd.state().at(0).data);
    saved_count = first_sgd.step_count();
  }
  auto resumed = ringdp::nn::Sequential<float>::from_spec("8-6-3");
  resumed.initialize(99);
  ringdp::nn::Sgd<float> resumed_sgd(resumed.parameter_count(), sgd_options);
  std::copy(saved_parameters.begin(), saved_parameters.end(), resumed.parameters().begin());
  std::copy(saved_momentum.begin(), saved_momentum.end(), resumed_sgd.state().at(0).data.begin());
  resumed_sgd.set_step_count(saved_count);
  {
    Trainer trainer(world, resumed, resumed_sgd, options);
    trainer.set_position(saved);
    auto source = make_source();
    while (trainer.position().epoch < 3) trainer.train_epoch(source);
  }
  CHECK(all_ranks(copy(resumed.parameters()) == copy(straight.parameters())));
  CHECK(all_ranks(copy(resumed_sgd.state().at(0).data) == copy(straight_sgd.state().at(0).data)));
}

TEST_CASE("the trainer accounts step times and writes a Chrome trace with one process per rank",
          "[train][timeline]") {
  const Communicator world(MPI_COMM_WORLD);
  auto [x, labels] = ringdp::test::teacher_data(64, 16, 4, 4);
  auto model = ringdp::nn::Sequential<float>::from_spec("16-32-4");
  model.initialize(2);
  ringdp::nn::Sgd<float> sgd(model.parameter_count());
  Trainer trainer(world, model, sgd,
                  {.bucket_bytes = 1024, .fusion_bytes = 0, .record_timeline = true});
  InMemorySource source(x, labels, world.rank(), world.size(), {.batch_size = 4});
  const EpochResult epoch = trainer.train_epoch(source);

  const auto steps = static_cast<std::size_t>(epoch.steps);
  const StepTimes totals = trainer.times().totals();
  const StepTimes medians = trainer.times().medians();
  CHECK(all_ranks(trainer.times().steps() == steps && epoch.samples == 64));
  CHECK(all_ranks(totals.total >= totals.forward + totals.backward + totals.optimizer &&
                  medians.total > 0));

  // Per step: data, forward, metrics, backward, wait, optimizer and one event per reduction.
  const std::size_t per_step = 6 + trainer.reducer().units().size();
  CHECK(all_ranks(trainer.timeline().size() == steps * per_step));

  // A name of this run's own (rank 0's pid): ctest runs the np2/np3/np4 jobs side by side
  // in the same directory, and one job must not read or remove another's trace.
  int pid = static_cast<int>(::getpid());
  MPI_Bcast(&pid, 1, MPI_INT, 0, world.native());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("ringdp_test_train_timeline_" + std::to_string(pid) + ".json"))
                               .string();
  write_chrome_trace(world, path, trainer.timeline());
  bool ok = true;
  if (world.rank() == 0) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const std::string json = text.str();
    auto count = [&](const std::string& needle) {
      std::size_t c = 0;
      for (std::size_t at = json.find(needle); at != std::string::npos;
           at = json.find(needle, at + 1))
        ++c;
      return c;
    };
    ok = json.rfind("{\"displayTimeUnit\"", 0) == 0 &&
         count("\"ph\":\"X\"") == steps * per_step * world.size() &&
         count("\"name\":\"process_name\"") == static_cast<std::size_t>(world.size()) &&
         count("\"name\":\"allreduce\"") ==
             steps * trainer.reducer().units().size() * world.size() &&
         !std::filesystem::exists(path + ".tmp");
    std::filesystem::remove(path);
  }
  CHECK(all_ranks(ok));
}
