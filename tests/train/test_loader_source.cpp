// The trainer fed by the HDF5 ShardedLoader: k ranks equal a 1-rank run with batch k b in
// global mode, and a 1-rank run with --virtual-ranks k in shard mode; ranks bit-identical.

#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/data/synth.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
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
