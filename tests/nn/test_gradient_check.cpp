// Gradient check in double precision: every layer's analytic backward and the loss's
// gradient against central finite differences, and the whole model through its arena.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/nn/activations.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/thread_pool.hpp"

using ringdp::test::all_ranks;
using namespace ringdp::nn;

namespace {

constexpr double kStep = 1e-6;       // central differences: truncation O(h^2) ~ 1e-12
constexpr double kTolerance = 1e-6;  // the bound on the relative error

// d f / d v_i by central differences, perturbing `values` in place (and restoring it).
std::vector<double> numeric_gradient(double* values, std::size_t n,
                                     const std::function<double()>& f) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double saved = values[i];
    values[i] = saved + kStep;
    const double up = f();
    values[i] = saved - kStep;
    const double down = f();
    values[i] = saved;
    g[i] = (up - down) / (2.0 * kStep);
  }
  return g;
}

// ||a - b|| / max(||a||, ||b||): the norm-wise relative error (0 when both are 0).
double relative_error(const double* a, const std::vector<double>& b) {
  double diff = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const double scale = std::sqrt(std::max(na, nb));
  return scale == 0.0 ? 0.0 : std::sqrt(diff) / scale;
}

// Uniform in [-1, 1] but at least `gap` away from 0, so that finite differences on ReLU
// inputs never straddle the kink at 0.
Matrix<double> random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed,
                             double gap = 0.0) {
  std::mt19937_64 rng(seed);
  Matrix<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * 2.0 - 1.0;
    if (std::abs(u) < gap) u = u < 0 ? u - gap : u + gap;
    m.data()[i] = u;
  }
  return m;
}

// Checks one layer (owned by a one-layer model, which gives it its arena slice) with the
// scalar probe f = sum(R .* layer(x)), whose gradient wrt the output is R.
void check_layer(std::unique_ptr<Layer<double>> layer_ptr, double input_gap) {
  std::vector<std::unique_ptr<Layer<double>>> layers;
  layers.push_back(std::move(layer_ptr));
  Sequential<double> model(std::move(layers));
  model.initialize(42);
  Layer<double>& layer = model.layer(0);
  const auto in = static_cast<Eigen::Index>(layer.input_size());
  const auto out = static_cast<Eigen::Index>(layer.output_size());
  constexpr Eigen::Index kBatch = 3;
  Matrix<double> x = random_matrix(in, kBatch, 7, input_gap);
  const Matrix<double> r = random_matrix(out, kBatch, 8);
  // Non-zero biases, so the bias gradient is not checked at a special point.
  for (double& p : model.parameters()) p += 0.01;

  Matrix<double> y;
  const auto probe = [&] {
    layer.forward(x, y);
    return (r.array() * y.array()).sum();
  };
  probe();
  Matrix<double> dx;
  layer.backward(x, y, r, &dx);

  const std::vector<double> num_dx =
      numeric_gradient(x.data(), static_cast<std::size_t>(x.size()), probe);
  const double err_x = relative_error(dx.data(), num_dx);
  INFO(layer.kind() << " input gradient relative error " << err_x);
  CHECK(all_ranks(err_x < kTolerance));

  if (model.parameter_count() > 0) {
    const std::vector<double> num_dp =
        numeric_gradient(model.parameters().data(), model.parameter_count(), probe);
    const double err_p = relative_error(model.gradients().data(), num_dp);
    INFO(layer.kind() << " parameter gradient relative error " << err_p);
    CHECK(all_ranks(err_p < kTolerance));
    // A real check, not 0 vs 0: the gradients must not vanish.
    CHECK(all_ranks(Eigen::Map<Vector<double>>(model.gradients().data(),
                                               static_cast<Eigen::Index>(model.parameter_count()))
                        .norm() > 0.1));
  }
}

// Relative error of the model's backward gradient of the mean softmax cross-entropy loss
// against central differences.
double model_gradient_error(Sequential<double>& model, const Matrix<double>& x,
                            const std::vector<std::int32_t>& labels) {
  Matrix<double> dlogits;
  const auto loss = [&] {
    Matrix<double> scratch;
    return softmax_cross_entropy<double>(model.forward(x), labels, scratch).mean_loss;
  };
  softmax_cross_entropy<double>(model.forward(x), labels, dlogits);
  model.backward(dlogits);
  const std::vector<double> analytic(model.gradients().begin(), model.gradients().end());
  const std::vector<double> num =
      numeric_gradient(model.parameters().data(), model.parameter_count(), loss);
  return relative_error(analytic.data(), num);
}

}  // namespace

TEST_CASE("gradient check: Dense (weights, bias and input)") {
  check_layer(std::make_unique<Dense<double>>(5, 4, Init::He), 0.0);
  check_layer(std::make_unique<Dense<double>>(3, 7, Init::Xavier), 0.0);
}

TEST_CASE("gradient check: ReLU") { check_layer(std::make_unique<ReLU<double>>(6), 0.05); }

TEST_CASE("gradient check: Tanh") { check_layer(std::make_unique<Tanh<double>>(6), 0.0); }

TEST_CASE("gradient check: softmax cross-entropy, full and padded batches") {
  const std::vector<std::int32_t> labels = {2, 0, 4, 1, 3};
  for (std::size_t real : {std::size_t{5}, std::size_t{3}}) {
    Matrix<double> logits = random_matrix(5, 5, 11) * 3.0;
    Matrix<double> grad;
    const auto loss = [&] {
      Matrix<double> scratch;
      return softmax_cross_entropy<double>(logits, labels, scratch, real).mean_loss;
    };
    softmax_cross_entropy<double>(logits, labels, grad, real);
    const std::vector<double> num = numeric_gradient(logits.data(), 25, loss);
    const double err = relative_error(grad.data(), num);
    INFO("real " << real << ": relative error " << err);
    CHECK(all_ranks(err < kTolerance));
  }
}

TEST_CASE("gradient check: whole model through the arena, with the backward hook") {
  std::vector<std::unique_ptr<Layer<double>>> layers;
  layers.push_back(std::make_unique<Dense<double>>(4, 6, Init::He));
  layers.push_back(std::make_unique<Tanh<double>>(6));
  layers.push_back(std::make_unique<Dense<double>>(6, 5, Init::He));
  layers.push_back(std::make_unique<ReLU<double>>(5));
  layers.push_back(std::make_unique<Dense<double>>(5, 3, Init::Xavier));
  Sequential<double> model(std::move(layers));
  model.initialize(3);
  for (double& p : model.parameters()) p += 0.02;  // non-zero biases keep ReLU inputs off 0

  const Matrix<double> x = random_matrix(4, 4, 5);
  const std::vector<std::int32_t> labels = {0, 2, 1, 2};
  const double err = model_gradient_error(model, x, labels);
  INFO("model relative error " << err);
  CHECK(all_ranks(err < kTolerance));
}

TEST_CASE("gradient check: the fused Dense+ReLU paths, on 1 and 3 threads") {
  // Dense+ReLU before a Dense (mask applied in that Dense's backward), Dense+ReLU before a
  // Tanh (the ReLU's own backward), and a model ending in Dense+ReLU (the ReLU's backward
  // on dlogits); widths and batch off the 16-element split unit.
  for (int threads : {1, 3}) {
    ThreadPool pool(threads, {.min_parallel_work = 1});  // split even these small kernels
    std::vector<std::unique_ptr<Layer<double>>> layers;
    layers.push_back(std::make_unique<Dense<double>>(7, 19, Init::He));
    layers.push_back(std::make_unique<ReLU<double>>(19));
    layers.push_back(std::make_unique<Dense<double>>(19, 35, Init::He));
    layers.push_back(std::make_unique<ReLU<double>>(35));
    layers.push_back(std::make_unique<Tanh<double>>(35));
    layers.push_back(std::make_unique<Dense<double>>(35, 6, Init::He));
    layers.push_back(std::make_unique<ReLU<double>>(6));
    Sequential<double> model(std::move(layers));
    model.initialize(8);
    for (double& p : model.parameters()) p += 0.03;
    model.set_thread_pool(&pool);

    const Matrix<double> x = random_matrix(7, 5, 9);
    const std::vector<std::int32_t> labels = {0, 5, 3, 2, 1};
    const double err = model_gradient_error(model, x, labels);
    INFO(threads << " threads: relative error " << err);
    CHECK(all_ranks(err < kTolerance));
  }
}
