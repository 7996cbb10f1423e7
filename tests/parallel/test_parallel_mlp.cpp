// ParallelMlp, the replica over any grid, in double: the training step's loss and
// gradients and the evaluation's loss equal those of the unsplit model on the same batch,
// with padding columns and a replica weight, on every grid shape the rank count allows.

#include <catch2/catch.hpp>
#include <vector>

#include "mpi_test.hpp"
#include "parallel_fixture.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/parallel/full_arena.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/parallel_mlp.hpp"

namespace {

using ringdp::Communicator;
using ringdp::nn::Matrix;
using ringdp::test::all_ranks;
namespace nn = ringdp::nn;
namespace parallel = ringdp::parallel;

constexpr char kSpec[] = "10-16-12-8-6";
constexpr std::size_t kBatch = 9;
constexpr std::size_t kReal = 7;  // two padding columns
constexpr double kScale = 0.75;

double replica_error(const parallel::Grid& grid, int micro_batches) {
  auto full = nn::Sequential<double>::from_spec(kSpec);
  full.initialize(3);
  parallel::ParallelMlp<double> replica(grid, kSpec, micro_batches);
  replica.initialize(3);
  const Matrix<double> x = ringdp::test::random_matrix(10, kBatch, 4);
  const std::vector<std::int32_t> labels = {0, 5, 2, 2, 1, 4, 3, 0, 5};
  Matrix<double> grad;
  const nn::LossResult expected =
      nn::softmax_cross_entropy<double>(full.forward(x), labels, grad, kReal, kReal);
  grad *= kScale;
  full.backward(grad);

  const nn::LossResult got = replica.train_batch(x, labels, kReal, kScale);
  double error = 0.0;
  if (replica.computes_loss()) {
    error = std::abs(got.loss_sum - expected.loss_sum) / expected.loss_sum;
    error += got.correct == expected.correct && got.count == expected.count ? 0.0 : 1.0;
  } else {
    error += got.count == 0 ? 0.0 : 1.0;
  }
  std::vector<double> gathered(replica.layout().full_parameter_count());
  parallel::gather_full<double>(grid, replica.layout(), replica.model().gradients(), gathered);
  error = std::max(error, ringdp::test::relative_error(gathered, full.gradients()));
  const nn::LossResult evaluated = replica.evaluate_batch(x, labels, kReal);
  const nn::LossResult reference = nn::softmax_cross_entropy<double>(
      full.forward(x.leftCols(kReal)), std::span<const std::int32_t>(labels).first(kReal), grad);
  if (replica.computes_loss()) {
    error = std::max(error, std::abs(evaluated.loss_sum - reference.loss_sum) / reference.loss_sum);
  }
  return error;
}

}  // namespace

TEST_CASE("ParallelMlp: the step of the unsplit model on every grid", "[parallel][replica]") {
  const Communicator world(MPI_COMM_WORLD);
  for (int t = 1; t <= world.size(); ++t) {
    for (int p = 1; p <= 4 && t * p <= world.size(); ++p) {
      if (world.size() % (t * p) != 0) continue;
      const parallel::Grid grid(world, t, p);
      for (const int m : {1, 4}) {
        const double error = replica_error(grid, m);
        CAPTURE(grid.describe(), m, error);
        CHECK(all_ranks(error <= 1e-12));
      }
    }
  }
}

TEST_CASE("ParallelMlp: a model that cannot be split over the grid fails on every rank",
          "[parallel][replica]") {
  const Communicator world(MPI_COMM_WORLD);
  if (world.size() < 2) return;
  const parallel::Grid grid(world, 1, world.size());
  auto failure = [&](const char* spec, int micro_batches) {
    try {
      parallel::ParallelMlp<float> replica(grid, spec, micro_batches);
    } catch (const ringdp::InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string one_layer = failure("10-6", 1);
  const std::string no_micro_batches = failure("10-6-6-6-6", 0);
  CAPTURE(one_layer, no_micro_batches);
  CHECK(all_ranks(one_layer.find("cannot be cut into") != std::string::npos &&
                  no_micro_batches.find("0 micro-batches") != std::string::npos));
}
