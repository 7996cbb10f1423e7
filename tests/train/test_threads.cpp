// Compute threads inside the ranks (TrainerOptions::threads): a fixed thread count gives
// the same bits run after run, the replicas stay bit-identical, and the result is one
// thread's to rounding (the kernels split products by blocks of the result, each element
// summed by one thread, in the BLAS's own order).
//
// The model is wide enough (96 x 200 x 24 multiply-adds in the first product) that every
// kernel really splits among the threads; N = 149 (prime) leaves a partial last batch.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Communicator;
using namespace ringdp::train;

constexpr std::size_t kSamples = 149;
constexpr std::size_t kBatch = 24;
constexpr int kSteps = 12;

struct Run {
  std::vector<float> parameters;
  int threads = 0;
};

Run train(const Communicator& comm, int threads) {
  auto [x, labels] = ringdp::test::teacher_data(kSamples, 200, 10, 5);
  InMemorySource source(std::move(x), std::move(labels), comm.rank(), comm.size(),
                        {.batch_size = kBatch, .seed = 3});
  auto model = ringdp::nn::Sequential<float>::from_spec("200-96-40-10");
  model.initialize(9);
  ringdp::nn::Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9, .nesterov = true});
  Run run;
  {
    Trainer trainer(comm, model, sgd, {.schedule = {.base_lr = 0.05}, .threads = threads});
    run.threads = trainer.cores().compute_threads;
    Batch b;
    std::int64_t step = 0;
    for (std::uint64_t epoch = 0; step < kSteps; ++epoch) {
      source.start_epoch(epoch);
      while (step < kSteps && source.next(b)) {
        trainer.step(b, static_cast<std::int64_t>(source.steps_per_epoch()));
        ++step;
      }
    }
  }
  // The trainer took its pool back from the model and the optimizer.
  CHECK(ringdp::test::all_ranks(model.thread_pool() == nullptr && sgd.thread_pool() == nullptr));
  const auto p = model.parameters();
  run.parameters.assign(p.begin(), p.end());
  return run;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("compute threads: the same bits for a fixed count, one thread's result to rounding",
          "[train][threads]") {
  const Communicator world(MPI_COMM_WORLD);
  const Run one = train(world, 1);
  for (const int threads : {2, 3}) {
    CAPTURE(threads);
    const Run first = train(world, threads);
    const Run again = train(world, threads);
    CHECK(ringdp::test::all_ranks(first.threads == threads));
    CHECK(ringdp::test::all_ranks(same_bits(first.parameters, again.parameters)));
    CHECK(ringdp::test::same_on_all_ranks(ringdp::test::hash_bytes(
        first.parameters.data(), first.parameters.size() * sizeof(float))));
    const double difference = ringdp::test::relative_difference(first.parameters, one.parameters);
    CAPTURE(difference);
    CHECK(ringdp::test::all_ranks(difference < 1e-5));
  }
}

TEST_CASE("compute threads: 0 plans one per CPU less one, a negative count fails every rank",
          "[train][threads]") {
  const Communicator world(MPI_COMM_WORLD);
  auto model = ringdp::nn::Sequential<float>::from_spec("4-3");
  ringdp::nn::Sgd<float> sgd(model.parameter_count(), {});
  {
    Trainer trainer(world, model, sgd, {.threads = 0});
    const ringdp::nn::CoreBudget& cores = trainer.cores();
    CHECK(ringdp::test::all_ranks(cores.compute_threads == std::max(1, cores.cpus - 1) &&
                                  cores.helper_threads == 2 && model.thread_pool() != nullptr));
  }
  CHECK_THROWS_AS(Trainer(world, model, sgd, {.threads = -1}), ringdp::InvalidArgument);
}
