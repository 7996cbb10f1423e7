// Pipeline parallelism: the 1F1B schedule (complete, ordered, bounded activations, no
// deadlock, the ideal bubble), and pipeline stages in double precision against the
// unsplit model: the same loss and parameter gradients for 1 to 7 micro-batches, also
// with tensor-parallel stages; bad stage chains are errors on every rank.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "parallel_fixture.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/parallel/full_arena.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/mlp_layout.hpp"
#include "ringdp/parallel/pipeline_schedule.hpp"
#include "ringdp/parallel/pipeline_stage.hpp"

namespace {

using ringdp::Communicator;
using ringdp::nn::Matrix;
using ringdp::parallel::Pass;
using ringdp::parallel::PipelineAction;
using ringdp::test::all_ranks;
using ringdp::test::random_matrix;
namespace nn = ringdp::nn;
namespace parallel = ringdp::parallel;

// Runs the P stages' schedules against each other with every pass taking one time unit:
// F(k) on stage s needs F(k) done on s - 1, B(k) on s needs B(k) done on s + 1. Returns
// the number of units until every stage is done (-1 on a deadlock) and the largest number
// of micro-batches any stage held (forward done, backward not) at once.
std::pair<int, int> simulate(int stages, int micro_batches) {
  std::vector<std::vector<PipelineAction>> plan;
  for (int s = 0; s < stages; ++s) {
    plan.push_back(parallel::one_forward_one_backward(stages, s, micro_batches));
  }
  std::vector<std::size_t> next(static_cast<std::size_t>(stages), 0);
  // done_at[s][pass][k]: the unit at whose end the pass finished (-1: not yet).
  std::vector<std::vector<int>> fwd(stages, std::vector<int>(micro_batches, -1));
  std::vector<std::vector<int>> bwd(stages, std::vector<int>(micro_batches, -1));
  int held = 0;
  for (int unit = 0; unit < 4 * (stages + micro_batches) + 8; ++unit) {
    bool all_done = true;
    std::vector<std::pair<int, PipelineAction>> runnable;
    for (int s = 0; s < stages; ++s) {
      if (next[s] == plan[s].size()) continue;
      all_done = false;
      const PipelineAction a = plan[s][next[s]];
      const bool ready =
          a.pass == Pass::Forward
              ? (s == 0 || (fwd[s - 1][a.micro_batch] >= 0 && fwd[s - 1][a.micro_batch] < unit))
              : (s + 1 == stages
                     ? fwd[s][a.micro_batch] >= 0
                     : (bwd[s + 1][a.micro_batch] >= 0 && bwd[s + 1][a.micro_batch] < unit));
      if (ready) runnable.push_back({s, a});
    }
    if (all_done) return {unit, held};
    for (const auto& [s, a] : runnable) {
      (a.pass == Pass::Forward ? fwd : bwd)[s][a.micro_batch] = unit;
      ++next[s];
      int alive = 0;
      for (int k = 0; k < micro_batches; ++k) alive += fwd[s][k] >= 0 && bwd[s][k] < 0;
      held = std::max(held, alive);
    }
  }
  return {-1, held};
}

// The loss sum(Y * R) over the batch, one micro-batch at a time: dL/dY = R.
parallel::MicroBatchLoss<double> product_loss(const Matrix<double>& r) {
  return [&r](const Matrix<double>& out, parallel::Slice cols, Matrix<double>& grad) {
    grad =
        r.middleCols(static_cast<Eigen::Index>(cols.offset), static_cast<Eigen::Index>(cols.size));
    nn::LossResult result;
    result.loss_sum = out.cwiseProduct(grad).sum();
    result.count = cols.size;
    return result;
  };
}

// A pipeline over `grid` (its tensor groups split the stages' layers) against the unsplit
// model: the largest relative error of the loss and of the gathered gradient.
double pipeline_error(const parallel::Grid& grid, const std::vector<std::size_t>& widths,
                      int micro_batches, std::size_t batch) {
  const parallel::MlpLayout layout(widths, grid.tensor_size(), grid.pipeline_size());
  const std::string spec = ringdp::test::spec_of(widths);
  auto full = nn::Sequential<double>::from_spec(spec);
  const auto at = grid.coordinates();
  auto model = layout.build<double>(grid.tensor(), at.pipeline);
  const Matrix<double> p = random_matrix(static_cast<Eigen::Index>(full.parameter_count()), 1, 31);
  std::copy(p.data(), p.data() + p.size(), full.parameters().begin());
  parallel::scatter_full<double>(layout, at.pipeline, at.tensor, full.parameters(),
                                 model.parameters());
  const auto b = static_cast<Eigen::Index>(batch);
  const Matrix<double> x = random_matrix(static_cast<Eigen::Index>(widths.front()), b, 32);
  const Matrix<double> r = random_matrix(static_cast<Eigen::Index>(widths.back()), b, 33);
  const double reference_loss = full.forward(x).cwiseProduct(r).sum();
  full.backward(r);

  parallel::PipelineStage<double> stage(grid.pipeline(), model, micro_batches);
  double error = 0.0;
  for (int repeat = 0; repeat < 2; ++repeat) {  // a second step reuses every buffer
    const nn::LossResult loss = stage.step(x, batch, product_loss(r));
    if (stage.last()) {
      error = std::max(error, std::abs(loss.loss_sum - reference_loss) / std::abs(reference_loss));
      error = std::max(error, loss.count == batch ? 0.0 : 1.0);
    }
    std::vector<double> gathered(full.parameter_count());
    parallel::gather_full<double>(grid, layout, model.gradients(), gathered);
    error = std::max(error, ringdp::test::relative_error(gathered, full.gradients()));
  }
  const parallel::PipelineTimes& times = stage.times();
  const bool sane = times.total > 0.0 && times.compute > 0.0 && times.compute <= times.total &&
                    stage.events().size() == 2 * static_cast<std::size_t>(micro_batches);
  // Evaluation: forwards only, the same loss, the gradients untouched; also for a batch
  // smaller than the micro-batch count.
  const nn::LossResult evaluated = stage.evaluate(x, batch, product_loss(r));
  const Matrix<double> x1 = x.leftCols(1);
  const nn::LossResult single = stage.evaluate(x1, 1, product_loss(r));
  if (stage.last()) {
    const double one = full.forward(x1).cwiseProduct(r.leftCols(1)).sum();
    error =
        std::max(error, std::abs(evaluated.loss_sum - reference_loss) / std::abs(reference_loss));
    error = std::max(error, std::abs(single.loss_sum - one) / std::abs(one));
  }
  std::vector<double> after(full.parameter_count());
  parallel::gather_full<double>(grid, layout, model.gradients(), after);
  error = std::max(error, ringdp::test::relative_error(after, full.gradients()));
  return sane ? error : 1.0;
}

}  // namespace

TEST_CASE("1F1B: every pass once, in order, bounded activations, no deadlock, the ideal bubble",
          "[parallel][pipeline]") {
  for (int stages = 1; stages <= 5; ++stages) {
    for (int m = 1; m <= 7; ++m) {
      CAPTURE(stages, m);
      for (int s = 0; s < stages; ++s) {
        const auto plan = parallel::one_forward_one_backward(stages, s, m);
        std::vector<PipelineAction> forwards, backwards;
        for (const auto& a : plan) (a.pass == Pass::Forward ? forwards : backwards).push_back(a);
        bool ordered = forwards.size() == static_cast<std::size_t>(m) &&
                       backwards.size() == static_cast<std::size_t>(m);
        for (int k = 0; ordered && k < m; ++k) {
          ordered = forwards[k].micro_batch == k && backwards[k].micro_batch == k;
        }
        CHECK(ordered);
      }
      // With unit passes the schedule takes 2 (M + P - 1) units, the stages are busy 2M of
      // them: the idle share is the ideal bubble. Each stage holds at most P - s <= P
      // micro-batches (GPipe would hold M).
      const auto [units, held] = simulate(stages, m);
      CHECK(units == 2 * (m + stages - 1));
      CHECK(held <= std::min(stages, m));
      CHECK(1.0 - 2.0 * m / units == Approx(parallel::ideal_bubble_fraction(stages, m)));
    }
  }
  CHECK_THROWS_AS(parallel::one_forward_one_backward(2, 2, 1), ringdp::InvalidArgument);
  CHECK_THROWS_AS(parallel::one_forward_one_backward(2, 0, 0), ringdp::InvalidArgument);
}

TEST_CASE("pipeline stages give the unsplit model's loss and gradients", "[parallel][pipeline]") {
  const Communicator world(MPI_COMM_WORLD);
  if (world.size() > 4) return;  // the model has 4 Dense layers
  const parallel::Grid grid(world, 1, world.size());
  for (const int m : {1, 3, 4, 7}) {
    const double error = pipeline_error(grid, {9, 12, 11, 8, 5}, m, 10);
    CAPTURE(world.size(), m, error);
    CHECK(all_ranks(error <= 1e-12));
  }
}

TEST_CASE("pipeline stages split by tensor parallelism, and data replicas beside them",
          "[parallel][pipeline][tensor]") {
  const Communicator world(MPI_COMM_WORLD);
  if (world.size() != 4) return;
  for (const auto& [t, p] : {std::pair{2, 2}, {1, 2}}) {
    const parallel::Grid grid(world, t, p);
    const double error = pipeline_error(grid, {9, 12, 11, 8, 5}, 3, 7);
    CAPTURE(t, p, error);
    CHECK(all_ranks(error <= 1e-12));
  }
}

TEST_CASE("stages that do not chain, or disagree on micro-batches, fail on every rank",
          "[parallel][pipeline]") {
  const Communicator world(MPI_COMM_WORLD);
  if (world.size() < 2) return;
  // Stage 1 takes 6 inputs where stage 0 gives 5.
  auto model = nn::Sequential<double>::from_spec(world.rank() == 0 ? "4-5" : "6-3");
  std::string message;
  try {
    parallel::PipelineStage<double> stage(world, model, 2);
  } catch (const ringdp::InvalidArgument& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(all_ranks(message.find("stage 1 takes 6 inputs but stage 0 gives 5") != std::string::npos));
  auto chained = nn::Sequential<double>::from_spec("3-3");
  message.clear();
  try {
    parallel::PipelineStage<double> stage(world, chained, world.rank() == 0 ? 2 : 3);
  } catch (const ringdp::InvalidArgument& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(all_ranks(message.find("micro-batches") != std::string::npos));
}
