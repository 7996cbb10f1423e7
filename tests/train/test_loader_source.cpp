// The trainer fed by the HDF5 ShardedLoader: k ranks equal a 1-rank run with batch k b in
// global mode, and a 1-rank run with --virtual-ranks k in shard mode; ranks bit-identical.

#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/data/synth.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/loader_source.hpp"
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
  const Communicator world(MPI_COMM_WORLD);
  const SynthFile file(world);
  for (const auto mode : {data::SamplingMode::Global, data::SamplingMode::Shard}) {
    data::ShardedLoader loader(world, data::H5Dataset(world, file.path),
                               {.mode = mode, .batch_size = 7, .seed = 3}, {.read_ahead = 2});
    train::LoaderSource loader_source(loader);
    auto [x, labels] = test::teacher_data(103, 20, 5, 9);
    train::InMemorySource memory_source(std::move(x), std::move(labels), world.rank(),
                                        world.size(), {.batch_size = 7, .seed = 3});
    for (train::BatchSource* source :
         std::initializer_list<train::BatchSource*>{&loader_source, &memory_source}) {
      for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
        source->start_epoch(epoch);
        const std::vector<std::size_t> announced = source->real_per_step();
        bool ok = announced.size() == source->steps_per_epoch();
        train::Batch b;
        std::size_t s = 0;
        for (; source->next(b); ++s) ok = ok && s < announced.size() && announced[s] == b.real;
        ok = ok && s == announced.size();
        CAPTURE(static_cast<int>(mode), epoch);
        CHECK(test::all_ranks(ok));
      }
    }
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
