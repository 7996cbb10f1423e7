// Tensor parallelism in double precision: the column- and row-parallel layers, their pair
// and a split MLP against the unsplit nn::Dense / nn::Sequential, with the loss
// L = sum(Y * R) whose output gradient is a random tensor R (Megatron-LM's layer tests).
// A run at 4 ranks checks tensor groups of 2, 3 (with a lone rank beside it) and 4, with
// widths that 3 and 4 do not divide.

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "mpi_test.hpp"
#include "parallel_fixture.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/parallel/column_parallel_dense.hpp"
#include "ringdp/parallel/full_arena.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/mlp_layout.hpp"
#include "ringdp/parallel/row_parallel_dense.hpp"

namespace {

using ringdp::Communicator;
using ringdp::nn::Matrix;
using ringdp::test::all_ranks;
using ringdp::test::random_matrix;
using ringdp::test::relative_error;
namespace nn = ringdp::nn;
namespace parallel = ringdp::parallel;

constexpr double kBound = 1e-12;
constexpr Eigen::Index kBatch = 5;

// A layer with its own arena (a one-layer model would do the same).
template <class Layer>
struct Bound {
  template <class... Args>
  explicit Bound(Args&&... args) : layer(std::forward<Args>(args)...) {
    std::size_t n = 0;
    for (const auto& s : layer.parameter_shapes()) n += s.rows * s.cols;
    parameters.assign(n, 0.0);
    gradients.assign(n, 0.0);
    layer.bind(parameters, gradients);
  }
  Layer layer;
  std::vector<double> parameters;
  std::vector<double> gradients;
};

// The largest relative error of a column-parallel layer's results against the rows
// it holds of the unsplit layer's (weights after initialisation must match exactly).
double column_error(const Communicator& tensor, std::size_t in, std::size_t out) {
  Bound<nn::Dense<double>> full(in, out);
  Bound<parallel::ColumnParallelDense<double>> split(tensor, in, out);
  nn::NormalGenerator a(17), b(17);
  full.layer.initialize(a);
  split.layer.initialize(b);
  const parallel::Slice rows = split.layer.rows();
  const auto r0 = static_cast<Eigen::Index>(rows.offset);
  const auto n = static_cast<Eigen::Index>(rows.size);
  double worst = full.layer.weight().middleRows(r0, n) == split.layer.weight() ? 0.0 : 1.0;
  full.layer.bias() = random_matrix(static_cast<Eigen::Index>(out), 1, 5);
  split.layer.bias() = full.layer.bias().segment(r0, n);

  const Matrix<double> x = random_matrix(static_cast<Eigen::Index>(in), kBatch, 3);
  const Matrix<double> r = random_matrix(static_cast<Eigen::Index>(out), kBatch, 4);
  Matrix<double> y, ys, dx, dxs;
  full.layer.forward(x, y);
  split.layer.forward(x, ys);
  full.layer.backward(x, y, r, &dx);
  split.layer.backward(x, ys, r.middleRows(r0, n), &dxs);
  worst = std::max(worst, relative_error(ys, y.middleRows(r0, n)));
  worst = std::max(worst, relative_error(dxs, dx));
  worst = std::max(worst, relative_error(Matrix<double>(split.layer.weight_grad()),
                                         full.layer.weight_grad().middleRows(r0, n)));
  worst = std::max(worst, relative_error(Matrix<double>(split.layer.bias_grad()),
                                         full.layer.bias_grad().segment(r0, n)));
  return worst;
}

// The same for a row-parallel layer: its columns of the weight, the whole output and bias.
double row_error(const Communicator& tensor, std::size_t in, std::size_t out) {
  Bound<nn::Dense<double>> full(in, out);
  Bound<parallel::RowParallelDense<double>> split(tensor, in, out);
  nn::NormalGenerator a(23), b(23);
  full.layer.initialize(a);
  split.layer.initialize(b);
  const parallel::Slice cols = split.layer.columns();
  const auto c0 = static_cast<Eigen::Index>(cols.offset);
  const auto n = static_cast<Eigen::Index>(cols.size);
  double worst = full.layer.weight().middleCols(c0, n) == split.layer.weight() ? 0.0 : 1.0;
  full.layer.bias() = random_matrix(static_cast<Eigen::Index>(out), 1, 6);
  split.layer.bias() = full.layer.bias();

  const Matrix<double> x = random_matrix(static_cast<Eigen::Index>(in), kBatch, 7);
  const Matrix<double> r = random_matrix(static_cast<Eigen::Index>(out), kBatch, 8);
  Matrix<double> y, ys, dx, dxs;
  full.layer.forward(x, y);
  split.layer.forward(x.middleRows(c0, n), ys);
  full.layer.backward(x, y, r, &dx);
  split.layer.backward(x.middleRows(c0, n), ys, r, &dxs);
  worst = std::max(worst, relative_error(ys, y));
  worst = std::max(worst, relative_error(dxs, dx.middleRows(c0, n)));
  worst = std::max(worst, relative_error(Matrix<double>(split.layer.weight_grad()),
                                         full.layer.weight_grad().middleCols(c0, n)));
  worst = std::max(worst, relative_error(Matrix<double>(split.layer.bias_grad()),
                                         Matrix<double>(full.layer.bias_grad())));
  return worst;
}

// A split MLP and the unsplit one with the same (random) parameters: output, input
// gradient and parameter gradients. `widths` as in a model spec.
struct MlpResult {
  double error = 0.0;
  double gradient_norm_ratio = 0.0;  // ||gathered split gradient|| / ||unsplit gradient||
  double input_gradient_norm_ratio = 0.0;
};

MlpResult mlp_comparison(const Communicator& group, const std::vector<std::size_t>& widths) {
  const parallel::Grid grid(group, group.size(), 1);
  const parallel::MlpLayout layout(widths, group.size(), 1);
  const std::string spec = ringdp::test::spec_of(widths);
  auto full = nn::Sequential<double>::from_spec(spec);
  auto split = layout.build<double>(grid.tensor(), 0);
  // Initialisation: the split model holds exactly its part of the unsplit one's.
  full.initialize(41);
  layout.initialize(split, 0, 41);
  std::vector<double> expected(split.parameter_count());
  const int t = grid.coordinates().tensor;
  parallel::scatter_full<double>(layout, 0, t, full.parameters(), expected);
  MlpResult result;
  result.error = std::equal(expected.begin(), expected.end(), split.parameters().begin()) ? 0 : 1;
  // Random parameters (biases too), the same in both.
  const Matrix<double> p = random_matrix(static_cast<Eigen::Index>(full.parameter_count()), 1, 9);
  std::copy(p.data(), p.data() + p.size(), full.parameters().begin());
  parallel::scatter_full<double>(layout, 0, t, full.parameters(), split.parameters());

  const Matrix<double> x = random_matrix(static_cast<Eigen::Index>(widths.front()), kBatch, 10);
  const Matrix<double> r = random_matrix(static_cast<Eigen::Index>(widths.back()), kBatch, 11);
  nn::ForwardCache<double> cf, cs;
  Matrix<double> dx, dxs;
  result.error = std::max(result.error, relative_error(split.forward(x, cs), full.forward(x, cf)));
  full.backward(r, cf, {}, &dx);
  split.backward(r, cs, {}, &dxs);
  result.error = std::max(result.error, relative_error(dxs, dx));
  parallel::scatter_full<double>(layout, 0, t, full.gradients(), expected);
  result.error = std::max(result.error, relative_error(split.gradients(), expected));
  std::vector<double> gathered(full.parameter_count());
  parallel::gather_full<double>(grid, layout, split.gradients(), gathered);
  auto norm = [](std::span<const double> v) {
    double s = 0.0;
    for (double e : v) s += e * e;
    return std::sqrt(s);
  };
  result.gradient_norm_ratio = norm(gathered) / norm(full.gradients());
  result.input_gradient_norm_ratio = dxs.norm() / dx.norm();
  return result;
}

}  // namespace

TEST_CASE("column- and row-parallel Dense equal the unsplit layer's slices", "[parallel][tensor]") {
  const Communicator world(MPI_COMM_WORLD);
  for (int size = 2; size <= std::max(2, world.size()); ++size) {
    const Communicator tensor = ringdp::test::consecutive_group(world, size);
    CAPTURE(size, tensor.size());
    // 12 splits evenly over 2, 3 and 4 ranks; 10 and 7 do not over 3 or 4.
    for (const auto& [in, out] : {std::pair<std::size_t, std::size_t>{9, 12}, {7, 10}, {10, 7}}) {
      CAPTURE(in, out);
      const double column = column_error(tensor, in, out);
      const double row = row_error(tensor, out, in);
      CAPTURE(column, row);
      CHECK(all_ranks(column <= kBound && row <= kBound));
    }
  }
}

TEST_CASE("a split MLP (column-row pairs, replicated output layer) equals the unsplit one",
          "[parallel][tensor]") {
  const Communicator world(MPI_COMM_WORLD);
  for (int size = 1; size <= world.size(); ++size) {
    const Communicator group = ringdp::test::consecutive_group(world, size);
    CAPTURE(size, group.size());
    for (const auto& widths :
         {std::vector<std::size_t>{8, 12, 6}, {7, 10, 9, 13, 5}, {6, 11, 5, 4}}) {
      const MlpResult r = mlp_comparison(group, widths);
      CAPTURE(widths, r.error);
      CHECK(all_ranks(r.error <= kBound));
    }
  }
}

TEST_CASE("the gradients do not grow with the tensor group (no allreduce too many)",
          "[parallel][tensor]") {
  // An allreduce of the row layer's input gradient (or a second one of the column
  // layer's) would multiply gradients by T: their norms must be those of T = 1. The split
  // width 12 divides evenly by 1 to 4, so that such a mistake scales the gradients
  // instead of mismatching the allreduce's counts across ranks.
  const Communicator world(MPI_COMM_WORLD);
  for (int size = 1; size <= world.size(); ++size) {
    const Communicator group = ringdp::test::consecutive_group(world, size);
    const MlpResult r = mlp_comparison(group, {9, 12, 24, 7});
    CAPTURE(size, group.size(), r.gradient_norm_ratio, r.input_gradient_norm_ratio);
    CHECK(all_ranks(std::abs(r.gradient_norm_ratio - 1.0) <= kBound &&
                    std::abs(r.input_gradient_norm_ratio - 1.0) <= kBound));
  }
}

TEST_CASE("finite differences confirm the gradient of a split MLP", "[parallel][tensor]") {
  // Softmax cross-entropy on the split model; every parameter of the UNSPLIT model is
  // perturbed in turn (on the rank holding it, or on every rank for a replicated one), so
  // the check covers the split and replicated tensors and gather_full alike.
  const Communicator world(MPI_COMM_WORLD);
  const parallel::Grid grid(world, world.size(), 1);
  const std::vector<std::size_t> widths = {6, 9, 7, 4};
  const parallel::MlpLayout layout(widths, world.size(), 1);
  auto model = layout.build<double>(grid.tensor(), 0);
  const int t = grid.coordinates().tensor;
  const Matrix<double> p =
      random_matrix(static_cast<Eigen::Index>(layout.full_parameter_count()), 1, 12, 0.05);
  parallel::scatter_full<double>(layout, 0, t, std::span<const double>(p.data(), p.size()),
                                 model.parameters());
  const Matrix<double> x = random_matrix(6, kBatch, 13, 0.1);
  const std::vector<std::int32_t> labels = {0, 3, 1, 2, 3};
  Matrix<double> grad;
  auto loss = [&] {
    return nn::softmax_cross_entropy<double>(model.forward(x), labels, grad).mean_loss;
  };
  loss();
  model.backward(grad);
  std::vector<double> analytic(layout.full_parameter_count());
  parallel::gather_full<double>(grid, layout, model.gradients(), analytic);

  const std::vector<parallel::ArenaRun> runs = layout.arena_runs(0, t);
  std::vector<double> numeric(analytic.size());
  constexpr double h = 1e-6;
  for (std::size_t j = 0; j < numeric.size(); ++j) {
    double* mine = nullptr;
    for (const auto& run : runs) {
      if (j >= run.full_offset && j < run.full_offset + run.count) {
        mine = &model.parameters()[run.local_offset + (j - run.full_offset)];
      }
    }
    const double saved = mine != nullptr ? *mine : 0.0;
    if (mine != nullptr) *mine = saved + h;
    const double up = loss();
    if (mine != nullptr) *mine = saved - h;
    const double down = loss();
    if (mine != nullptr) *mine = saved;
    numeric[j] = (up - down) / (2 * h);
  }
  double diff = 0.0, norm = 0.0;
  for (std::size_t j = 0; j < numeric.size(); ++j) {
    diff += (numeric[j] - analytic[j]) * (numeric[j] - analytic[j]);
    norm += analytic[j] * analytic[j];
  }
  const double error = std::sqrt(diff / norm);
  CAPTURE(world.size(), error);
  CHECK(all_ranks(error < 1e-6));
}

TEST_CASE("a width narrower than the tensor group is a clear error on every rank",
          "[parallel][tensor]") {
  const Communicator world(MPI_COMM_WORLD);
  if (world.size() < 2) return;
  bool column = false, row = false, layout = false;
  try {
    parallel::ColumnParallelDense<double> c(world, 5, static_cast<std::size_t>(world.size() - 1));
  } catch (const ringdp::InvalidArgument& e) {
    column = std::string(e.what()).find("cannot be split over") != std::string::npos;
  }
  try {
    parallel::RowParallelDense<double> r(world, 1, 4);
  } catch (const ringdp::InvalidArgument&) {
    row = true;
  }
  try {
    parallel::MlpLayout l({8, 1, 3}, world.size(), 1);
  } catch (const ringdp::InvalidArgument& e) {
    layout = std::string(e.what()).find("would split a width of 1") != std::string::npos;
  }
  CHECK(all_ranks(column && row && layout));
}
