// The gradient arena in node-shared memory: while a Trainer lives on ranks that share a
// node, the model's gradients lie in a SharedBuffer of the reducer's communicator (the
// node-local algorithms copy nothing in), and training gives the same bits as with the
// arena in ordinary memory (the reference: the same run with shared_gradients = false), for
// shm, hier and auto; afterwards the arena is back in ordinary memory, contents kept.
// Run at 2-4 ranks, and with RINGDP_NODE_SIZE=2 (hier across two "nodes").

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Algorithm;
using ringdp::Communicator;
using ringdp::test::all_ranks;
using namespace ringdp::train;

constexpr int kSteps = 30;

struct Run {
  std::vector<float> parameters;
  std::vector<float> gradients;  // the last step's averaged gradients
  std::vector<double> losses;
  bool moved = false;     // the arena lay elsewhere while the trainer lived
  bool restored = false;  // and back in ordinary memory (a fresh place) after, same bits
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Run train(const Communicator& comm, Algorithm algorithm, bool shared) {
  // 203 samples: partial last batches, padding on some ranks only.
  auto [x, labels] = ringdp::test::teacher_data(203, 20, 5, 7);
  InMemorySource source(std::move(x), std::move(labels), comm.rank(), comm.size(),
                        {.batch_size = 8, .seed = 11});
  auto model = ringdp::nn::Sequential<float>::from_spec("20-32-16-5");
  model.initialize(3);
  ringdp::nn::Sgd<float> sgd(model.parameter_count(), ringdp::nn::SgdOptions{.momentum = 0.9});
  const float* ordinary = model.gradients().data();
  Run run;
  {
    // Small buckets: several reductions per step, each a slice of the shared arena.
    Trainer trainer(comm, model, sgd,
                    {.bucket_bytes = 1024, .algorithm = algorithm, .shared_gradients = shared});
    run.moved = model.gradients().data() != ordinary;
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
    run.gradients.assign(model.gradients().begin(), model.gradients().end());
  }
  run.restored = !run.moved ||
                 (same_bits(run.gradients, {model.gradients().begin(), model.gradients().end()}));
  run.parameters.assign(model.parameters().begin(), model.parameters().end());
  return run;
}

}  // namespace

TEST_CASE("training with the gradient arena in shared memory gives the same bits",
          "[train][shared]") {
  const Communicator world(MPI_COMM_WORLD);
  // Every rank of the test's launch is on this machine: with 2 or more ranks, some node
  // (the machine, or RINGDP_NODE_SIZE's group) holds several ranks.
  const bool node_shared = world.node_layout().max_size > 1;
  for (const Algorithm algorithm : {Algorithm::Shm, Algorithm::Hierarchical, Algorithm::Auto}) {
    if (algorithm == Algorithm::Shm && !world.node_layout().one_node()) continue;
    CAPTURE(ringdp::to_string(algorithm));
    const Run ordinary = train(world, algorithm, false);
    const Run shared = train(world, algorithm, true);
    CHECK(all_ranks(!ordinary.moved && shared.moved == node_shared && shared.restored));
    CHECK(all_ranks(same_bits(shared.parameters, ordinary.parameters) &&
                    same_bits(shared.gradients, ordinary.gradients) &&
                    shared.losses == ordinary.losses));
  }
}
