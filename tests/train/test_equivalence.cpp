// Equivalence: k ranks with per-rank batch b and the global sample order train the same
// parameters as 1 rank with batch k b (computed here too, on each rank's own 1-rank
// communicator), for every allreduce algorithm; and all k ranks end bit-identical.
//
// N = 203 (prime) makes the last batch of every epoch partial and leaves padding on some
// ranks only, so the weighting of the gradient by real counts is exercised 4 to 7 times
// in the 50 steps.

#include <catch2/catch.hpp>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Algorithm;
using ringdp::Communicator;
using namespace ringdp::train;

constexpr std::size_t kSamples = 203;
constexpr std::size_t kBatch = 8;
constexpr int kSteps = 50;

struct Run {
  std::vector<float> parameters;
  std::vector<double> losses;
};

// Trains kSteps steps on `comm` with per-rank batch `batch`; returns the parameters.
Run train(const Communicator& comm, std::size_t batch, const TrainerOptions& options, bool adam) {
  auto [x, labels] = ringdp::test::teacher_data(kSamples, 20, 5, 7);
  InMemorySource source(std::move(x), std::move(labels), comm.rank(), comm.size(),
                        {.batch_size = batch, .seed = 11});
  auto model = ringdp::nn::Sequential<float>::from_spec("20-32-16-5");
  // A different initialisation on every rank but 0: the trainer's broadcast must fix it.
  model.initialize(3 + static_cast<std::uint64_t>(comm.rank()));
  std::unique_ptr<ringdp::nn::Optimizer<float>> optimizer;
  if (adam) {
    optimizer = std::make_unique<ringdp::nn::Adam<float>>(model.parameter_count());
  } else {
    optimizer = std::make_unique<ringdp::nn::Sgd<float>>(model.parameter_count(),
                                                         ringdp::nn::SgdOptions{.momentum = 0.9});
  }
  Trainer trainer(comm, model, *optimizer, options);
  Run run;
  Batch b;
  std::int64_t step = 0;
  for (std::uint64_t epoch = 0; step < kSteps; ++epoch) {
    source.start_epoch(epoch);
    while (step < kSteps && source.next(b)) {
      run.losses.push_back(
          trainer.step(b, static_cast<std::int64_t>(source.steps_per_epoch())).loss);
      ++step;
    }
  }
  const auto p = model.parameters();
  run.parameters.assign(p.begin(), p.end());
  return run;
}

void check_equivalent(const TrainerOptions& options, bool adam) {
  const Communicator world(MPI_COMM_WORLD);
  const int k = world.size();
  const Run distributed = train(world, kBatch, options, adam);
  // The reference: this rank alone, on its own communicator, with the whole global batch.
  const Communicator self = world.split(world.rank(), 0);
  TrainerOptions reference_options = options;
  reference_options.algorithm = Algorithm::Auto;
  const Run reference = train(self, kBatch * static_cast<std::size_t>(k), reference_options, adam);

  const double difference =
      ringdp::test::relative_difference(distributed.parameters, reference.parameters);
  CAPTURE(k, difference);
  CHECK(ringdp::test::all_ranks(difference < 1e-5));
  // The loss reported by the k-rank run is the global batch's mean, as in the reference.
  bool losses_match = distributed.losses.size() == reference.losses.size();
  for (std::size_t i = 0; losses_match && i < reference.losses.size(); ++i) {
    losses_match = std::abs(distributed.losses[i] - reference.losses[i]) <=
                   1e-4 * std::abs(reference.losses[i]);
  }
  CHECK(ringdp::test::all_ranks(losses_match));
  // Training moved the parameters (the comparison is not of two untouched models).
  auto untouched = ringdp::nn::Sequential<float>::from_spec("20-32-16-5");
  untouched.initialize(3);
  const auto p0 = untouched.parameters();
  CHECK(ringdp::test::all_ranks(
      ringdp::test::relative_difference(distributed.parameters,
                                        std::vector<float>(p0.begin(), p0.end())) > 1e-2));
  CHECK(ringdp::test::same_on_all_ranks(ringdp::test::hash_bytes(
      distributed.parameters.data(), distributed.parameters.size() * sizeof(float))));
}

}  // namespace

TEST_CASE("k ranks with batch b train the parameters of 1 rank with batch k b, every algorithm",
          "[train][equivalence]") {
  for (const Algorithm algorithm : {Algorithm::Ring, Algorithm::RecursiveDoubling, Algorithm::Mpi,
                                    Algorithm::ParameterServer}) {
    CAPTURE(ringdp::to_string(algorithm));
    check_equivalent({.algorithm = algorithm}, false);
  }
}

TEST_CASE("equivalence holds with many small fused buckets, without overlap, and with Adam",
          "[train][equivalence]") {
  SECTION("256-byte buckets, fused up to 1 kB") {
    check_equivalent({.bucket_bytes = 256, .fusion_bytes = 1024, .algorithm = Algorithm::Ring},
                     false);
  }
  SECTION("overlap off") { check_equivalent({.overlap = false}, false); }
  SECTION("Adam, check mode on") {
    check_equivalent({.check = true, .schedule = {.base_lr = 0.01}}, true);
  }
}
