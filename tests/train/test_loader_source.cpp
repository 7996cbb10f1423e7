// The trainer fed by the HDF5 ShardedLoader: k ranks equal a 1-rank run with batch k b in
// global mode, and a 1-rank run with --virtual-ranks k in shard mode; ranks bit-identical.

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/data/synth.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/loader_source.hpp"
#include "ringdp/train/lr_schedule.hpp"
#include "ringdp/train/timeline.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Communicator;
using namespace ringdp;

constexpr int kSteps = 50;

// A synthetic file shared by all ranks, removed at the end.
struct SynthFile {
  std::string path;
  const Communicator& comm;
  explicit SynthFile(const Communicator& c) : comm(c) {
    int pid = static_cast<int>(::getpid());
    MPI_Bcast(&pid, 1, MPI_INT, 0, comm.native());
    path = (std::filesystem::temp_directory_path() /
            ("ringdp_test_train_" + std::to_string(pid) + ".h5"))
               .string();
    // 203 samples (prime) in chunks of 16 rows: 13 blocks to deal in shard mode.
    data::synthesize(comm, path,
                     {.samples = 203,
                      .features = 20,
                      .classes = 5,
                      .hidden = 16,
                      .seed = 5,
                      .chunk_rows = 16,
                      .gzip = 0});
  }
  ~SynthFile() {
    comm.barrier();
    if (comm.rank() == 0) std::filesystem::remove(path);
  }
};

std::vector<float> train_with_loader(const Communicator& comm, const std::string& path,
                                     data::SamplerOptions sampling) {
  data::ShardedLoader loader(comm, data::H5Dataset(comm, path), sampling, {.read_ahead = 2});
  train::LoaderSource source(loader);
  auto model = nn::Sequential<float>::from_spec("20-24-5");
  model.initialize(8);
  nn::Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9});
  train::Trainer trainer(comm, model, sgd, {.schedule = {.base_lr = 0.05}});
  train::Batch b;
  int step = 0;
  for (std::uint64_t epoch = 0; step < kSteps; ++epoch) {
    source.start_epoch(epoch);
    while (step < kSteps && source.next(b)) {
      trainer.step(b, static_cast<std::int64_t>(source.steps_per_epoch()));
      ++step;
    }
  }
  return {model.parameters().begin(), model.parameters().end()};
}

// Starts `epoch` of `source` and reads it: true when real_per_step() announced one count
// per step and each delivered batch held exactly its announced real count (rank-local).
bool announced_counts_delivered(train::BatchSource& source, std::uint64_t epoch) {
  source.start_epoch(epoch);
  const std::vector<std::size_t> announced = source.real_per_step();
  bool ok = announced.size() == source.steps_per_epoch();
  train::Batch b;
  std::size_t s = 0;
  for (; source.next(b); ++s) ok = ok && s < announced.size() && announced[s] == b.real;
  return ok && s == announced.size();
}

}  // namespace

TEST_CASE("trainer + ShardedLoader: k ranks equal the 1-rank reference in global and shard mode",
          "[train][loader]") {
  const Communicator world(MPI_COMM_WORLD);
  const int k = world.size();
  const SynthFile file(world);
  const Communicator self = world.split(world.rank(), 0);
  constexpr std::size_t b = 6;

  SECTION("global mode: 1 rank with batch k b") {
    const auto distributed = train_with_loader(
        world, file.path, {.mode = data::SamplingMode::Global, .batch_size = b, .seed = 3});
    const auto reference = train_with_loader(
        self, file.path, {.mode = data::SamplingMode::Global, .batch_size = b * k, .seed = 3});
    const double difference = test::relative_difference(distributed, reference);
    CAPTURE(k, difference);
    CHECK(test::all_ranks(difference < 1e-5));
    CHECK(test::same_on_all_ranks(
        test::hash_bytes(distributed.data(), distributed.size() * sizeof(float))));
  }
  SECTION("shard mode: 1 rank with virtual ranks k") {
    const auto distributed = train_with_loader(
        world, file.path, {.mode = data::SamplingMode::Shard, .batch_size = b, .seed = 3});
    const auto reference = train_with_loader(
        self, file.path,
        {.mode = data::SamplingMode::Shard, .batch_size = b, .seed = 3, .virtual_ranks = k});
    const double difference = test::relative_difference(distributed, reference);
    CAPTURE(k, difference);
    CHECK(test::all_ranks(difference < 1e-5));
    CHECK(test::same_on_all_ranks(
        test::hash_bytes(distributed.data(), distributed.size() * sizeof(float))));
  }
}

TEST_CASE("real_per_step announces each batch's real count before the epoch runs",
          "[train][loader]") {
  // The loader announces its counts from the sampler's shares, the same in every epoch:
  // this holds only if no sampling mode changes them from epoch to epoch. Every mode, with
  // padding, drop_last, evaluation and virtual ranks (real columns of several logical
  // ranks first), over several epochs; 203 samples in blocks of 16 rows (the last block
  // short) so that shard-mode shares are uneven.
  const Communicator world(MPI_COMM_WORLD);
  const SynthFile file(world);
  const int k = world.size();
  std::vector<data::SamplerOptions> samplings;
  for (const auto mode : {data::SamplingMode::Global, data::SamplingMode::Shard}) {
    samplings.push_back({.mode = mode, .batch_size = 7, .seed = 3});
    samplings.push_back({.mode = mode, .batch_size = 7, .seed = 3, .drop_last = true});
    samplings.push_back({.mode = mode, .batch_size = 7, .seed = 3, .virtual_ranks = 2 * k});
    samplings.push_back(
        {.mode = mode, .batch_size = 7, .seed = 3, .shuffle = false, .evaluation = true});
  }
  for (const data::SamplerOptions& sampling : samplings) {
    data::ShardedLoader loader(world, data::H5Dataset(world, file.path), sampling,
                               {.read_ahead = 2});
    train::LoaderSource source(loader);
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
      const bool ok = announced_counts_delivered(source, epoch);
      CAPTURE(static_cast<int>(sampling.mode), sampling.drop_last, sampling.virtual_ranks,
              sampling.evaluation, epoch);
      CHECK(test::all_ranks(ok));
    }
  }
  auto [x, labels] = test::teacher_data(103, 20, 5, 9);
  train::InMemorySource memory_source(std::move(x), std::move(labels), world.rank(), world.size(),
                                      {.batch_size = 7, .seed = 3});
  for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
    CHECK(test::all_ranks(announced_counts_delivered(memory_source, epoch)));
  }
}

TEST_CASE("train_epoch, which knows each step's global count, equals step() without it",
          "[train][loader]") {
  // train_epoch() runs the single-synchronisation step (metrics after the gradient
  // reduction); step() on batches without global_real runs the metrics allreduce first.
  // The arithmetic is the same, so the parameters must be the same bits.
  const Communicator world(MPI_COMM_WORLD);
  auto [x, labels] = test::teacher_data(103, 20, 5, 9);
  train::InMemorySource source(std::move(x), std::move(labels), world.rank(), world.size(),
                               {.batch_size = 7, .seed = 3});
  auto run = [&](bool by_epoch) {
    auto model = nn::Sequential<float>::from_spec("20-24-5");
    model.initialize(8);
    nn::Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9});
    train::Trainer trainer(world, model, sgd, {.schedule = {.base_lr = 0.05}});
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
      if (by_epoch) {
        trainer.train_epoch(source);
      } else {
        source.start_epoch(epoch);
        train::Batch b;
        while (source.next(b)) {
          trainer.step(b, static_cast<std::int64_t>(source.steps_per_epoch()));
        }
      }
    }
    return std::vector<float>(model.parameters().begin(), model.parameters().end());
  };
  const std::vector<float> by_epoch = run(true);
  const std::vector<float> by_step = run(false);
  const double difference = test::relative_difference(by_epoch, by_step);
  CAPTURE(difference);
  CHECK(test::all_ranks(by_epoch == by_step));
  // Run to run in one process (fresh model, fresh arena at another address): the same
  // bits. This failed while the arenas had malloc's alignment (see Sequential).
  CHECK(test::all_ranks(run(true) == by_epoch));

  SECTION("a wrong announced count is the same Error on every rank") {
    auto model = nn::Sequential<float>::from_spec("20-24-5");
    model.initialize(8);
    nn::Sgd<float> sgd(model.parameter_count());
    train::Trainer trainer(world, model, sgd);
    source.start_epoch(0);
    train::Batch b;
    source.next(b);
    b.global_real = b.real * static_cast<std::size_t>(world.size()) + 1;
    std::string message;
    try {
      trainer.step(b, 1);
    } catch (const Error& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(test::all_ranks(message.find("announced") != std::string::npos));
    CHECK(test::same_on_all_ranks(test::hash_bytes(message.data(), message.size())));
  }
}

namespace {

// A loader over the synthetic file in global mode, and a 20-24-5 MLP trained on it with
// momentum and a cosine schedule over two epochs (so the step count per epoch matters).
struct Setup {
  data::ShardedLoader loader;
  train::LoaderSource source;
  nn::Sequential<float> model;
  nn::Sgd<float> sgd;
  std::unique_ptr<train::Trainer> trainer;

  Setup(const Communicator& comm, const std::string& path, std::size_t batch,
        bool record_timeline = false)
      : loader(comm, data::H5Dataset(comm, path),
               {.mode = data::SamplingMode::Global, .batch_size = batch, .seed = 3},
               {.read_ahead = 2}),
        source(loader),
        model(nn::Sequential<float>::from_spec("20-24-5")),
        sgd(model.parameter_count(), {.momentum = 0.9}) {
    model.initialize(8);
    trainer = std::make_unique<train::Trainer>(
        comm, model, sgd,
        train::TrainerOptions{
            .schedule = {.kind = train::ScheduleKind::Cosine, .base_lr = 0.05, .total_epochs = 2},
            .record_timeline = record_timeline});
  }
  // The loop of ringdp-train: the trainer begins each epoch, then steps to its end.
  void app_epoch() {
    const std::int64_t steps = trainer->start_epoch(source);
    for (std::int64_t s = 0; s < steps; ++s) trainer->train_step(source);
  }
  [[nodiscard]] std::vector<float> parameters() const {
    return {model.parameters().begin(), model.parameters().end()};
  }
  [[nodiscard]] std::vector<float> momentum() {
    const auto m = sgd.state().at(0).data;
    return {m.begin(), m.end()};
  }
};

// Timeline check of one step: the metrics allreduce starts after backward has started and
// after the step's last gradient reduction has ended, i.e. the step's only blocking points
// are the gradient reductions (none before backward).
bool metrics_after_gradients(const std::vector<train::TimelineEvent>& events, std::int64_t step,
                             std::size_t reductions) {
  const train::TimelineEvent* metrics = nullptr;
  const train::TimelineEvent* backward = nullptr;
  double last_reduction_end = -1.0;
  std::size_t count = 0;
  for (const auto& e : events) {
    if (e.step != step) continue;
    if (e.kind == train::EventKind::Metrics) metrics = &e;
    if (e.kind == train::EventKind::Backward) backward = &e;
    if (e.kind == train::EventKind::Allreduce) {
      ++count;
      last_reduction_end = std::max(last_reduction_end, e.start_us + e.duration_us);
    }
  }
  return metrics != nullptr && backward != nullptr && count == reductions &&
         metrics->start_us > backward->start_us && metrics->start_us + 1e-3 >= last_reduction_end;
}

}  // namespace

TEST_CASE("start_epoch + train_step (ringdp-train's loop) equal train_epoch, resume and 1 rank",
          "[train][loader]") {
  const Communicator world(MPI_COMM_WORLD);
  const int k = world.size();
  const SynthFile file(world);
  constexpr std::size_t b = 6;  // 203 samples: the last step is short, uneven across ranks

  Setup reference(world, file.path, b);
  for (int e = 0; e < 2; ++e) reference.trainer->train_epoch(reference.source);
  const auto steps = static_cast<std::int64_t>(reference.source.steps_per_epoch());
  CHECK(test::all_ranks(reference.trainer->position().epoch == 2 &&
                        reference.trainer->position().step_in_epoch == 0 &&
                        reference.trainer->position().global_step == 2 * steps));

  SECTION("the app's loop: the same bits, one metrics allreduce per step after the gradients") {
    Setup app(world, file.path, b, /*record_timeline=*/true);
    const Communicator& comm = app.trainer->communicator();
    bool ordered = true;
    bool positions = true;
    std::vector<std::uint64_t> per_epoch;
    for (std::int64_t e = 0; e < 2; ++e) {
      const std::uint64_t before = comm.collective_count();
      app.app_epoch();
      per_epoch.push_back(comm.collective_count() - before);
      // The last step finished the epoch: a checkpoint taken now resumes at the next one.
      const train::TrainPosition& p = app.trainer->position();
      positions =
          positions && p.epoch == e + 1 && p.step_in_epoch == 0 && p.global_step == (e + 1) * steps;
    }
    const std::size_t reductions = app.trainer->reducer().units().size();
    for (std::int64_t g = 0; g < 2 * steps; ++g) {
      ordered = ordered && metrics_after_gradients(app.trainer->timeline(), g, reductions);
    }
    // On the trainer's communicator (the gradients travel on the reducer's own): per
    // epoch one gather of the step counts, one allreduce of the real-count table, and one
    // metrics allreduce per step; nothing else. The first epoch may have one more: the
    // agreement before the node's shared window is made, at the communicator's first
    // node-local allreduce (the real-count table's, when Auto picks shm or hier).
    const bool counted = per_epoch.size() == 2 &&
                         per_epoch[1] == static_cast<std::uint64_t>(2 + steps) &&
                         per_epoch[0] - per_epoch[1] <= 1;
    CAPTURE(k, steps, per_epoch, reductions);
    CHECK(test::all_ranks(positions));
    CHECK(test::all_ranks(ordered));
    CHECK(test::all_ranks(counted));
    CHECK(test::all_ranks(app.parameters() == reference.parameters()));
    CHECK(test::all_ranks(app.momentum() == reference.momentum()));
    const auto params = app.parameters();
    CHECK(test::same_on_all_ranks(test::hash_bytes(params.data(), params.size() * sizeof(float))));

    // The check discriminates: a step whose global count is unknown (step() on a batch
    // without global_real) runs its metrics allreduce before backward.
    app.source.start_epoch(2);
    train::Batch batch;
    app.source.next(batch);
    const std::int64_t g = app.trainer->position().global_step;
    app.trainer->step(batch, steps);
    CHECK(test::all_ranks(!metrics_after_gradients(app.trainer->timeline(), g, reductions)));
  }

  SECTION("resumed mid-epoch through start_epoch: the same bits as the straight run") {
    Setup first(world, file.path, b);
    first.app_epoch();
    first.trainer->start_epoch(first.source);
    for (int s = 0; s < 5; ++s) first.trainer->train_step(first.source);
    const train::TrainPosition saved = first.trainer->position();

    Setup resumed(world, file.path, b);
    resumed.model.initialize(99);  // overwritten below, as a checkpoint load does
    const auto params = first.parameters();
    const auto momentum = first.momentum();
    std::copy(params.begin(), params.end(), resumed.model.parameters().begin());
    std::copy(momentum.begin(), momentum.end(), resumed.sgd.state().at(0).data.begin());
    resumed.sgd.set_step_count(first.sgd.step_count());
    resumed.trainer->set_position(saved);
    const std::int64_t left = resumed.trainer->start_epoch(resumed.source);
    for (std::int64_t s = 0; s < left; ++s) resumed.trainer->train_step(resumed.source);
    CAPTURE(k, steps, left);
    CHECK(test::all_ranks(saved.epoch == 1 && saved.step_in_epoch == 5 && left == steps - 5));
    CHECK(test::all_ranks(resumed.parameters() == reference.parameters()));
    CHECK(test::all_ranks(resumed.momentum() == reference.momentum()));
  }

  SECTION("the app's loop at k ranks equals 1 rank with batch k b") {
    const Communicator self = world.split(world.rank(), 0);
    Setup app(world, file.path, b);
    Setup single(self, file.path, b * static_cast<std::size_t>(k));
    for (int e = 0; e < 2; ++e) {
      app.app_epoch();
      single.app_epoch();
    }
    const double difference = test::relative_difference(app.parameters(), single.parameters());
    CAPTURE(k, difference);
    CHECK(test::all_ranks(difference < 1e-5));
  }

  SECTION("train_step outside a begun epoch is the same InvalidArgument on every rank") {
    Setup app(world, file.path, b);
    auto refused = [&] {
      try {
        app.trainer->train_step(app.source);
      } catch (const InvalidArgument& e) {
        return std::string(e.what()).find("start_epoch") != std::string::npos;
      }
      return false;
    };
    CHECK(test::all_ranks(refused()));  // never begun
    app.app_epoch();
    CHECK(test::all_ranks(refused()));  // the epoch is over

    // set_position() ends a begun epoch: its source was set up for the old position, and
    // reading on at the new one would train on the wrong batches (or past the count table).
    app.trainer->start_epoch(app.source);
    app.trainer->set_position({.epoch = 1, .step_in_epoch = steps - 1, .global_step = 2 * steps});
    CHECK(test::all_ranks(refused()));
    // evaluate() restarts the source, which ends its begun epoch too.
    app.trainer->start_epoch(app.source);
    app.trainer->evaluate(app.source);
    CHECK(test::all_ranks(refused()));
    // A new start_epoch() resumes at the set position: one step left, which ends the epoch.
    const std::int64_t left = app.trainer->start_epoch(app.source);
    app.trainer->train_step(app.source);
    CHECK(test::all_ranks(left == 1 && app.trainer->position().epoch == 2 &&
                          app.trainer->position().step_in_epoch == 0));
  }

  SECTION("a position at the end of its epoch: start_epoch finishes it, reading nothing") {
    Setup app(world, file.path, b);
    const Communicator& comm = app.trainer->communicator();
    app.trainer->set_position({.epoch = 0, .step_in_epoch = steps, .global_step = steps});
    const std::uint64_t before = comm.collective_count();
    const std::int64_t left = app.trainer->start_epoch(app.source);
    // Only the gather that checks every rank's position: no real-count allreduce, and no
    // agreement over a whole epoch of batches read and thrown away.
    const std::uint64_t collectives = comm.collective_count() - before;
    const train::TrainPosition& p = app.trainer->position();
    CAPTURE(collectives);
    CHECK(test::all_ranks(left == 0 && collectives == 1 && p.epoch == 1 && p.step_in_epoch == 0 &&
                          p.global_step == steps));
    // The source, never started for the finished epoch, serves the next one in full.
    app.app_epoch();
    CHECK(test::all_ranks(app.trainer->position().epoch == 2 &&
                          app.trainer->position().global_step == 2 * steps));
  }
}
