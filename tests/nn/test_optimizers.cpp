// SGD and Adam against updates worked out by hand (two steps each, so momentum and bias
// correction matter), on arenas long enough to run the vectorised loops and their tails.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/sgd.hpp"

using ringdp::test::all_ranks;
using namespace ringdp::nn;

namespace {

constexpr std::size_t kN = 1003;  // not a multiple of any SIMD width

// Runs `opt` for two steps from p = 1 with gradients g1 then g2 (same in every element)
// and returns the largest deviation from `expected1` / `expected2` after each step.
template <class T>
double two_steps(Optimizer<T>& opt, double lr, double g1, double g2, double expected1,
                 double expected2) {
  std::vector<T> p(kN, T(1));
  std::vector<T> g(kN, static_cast<T>(g1));
  double worst = 0;
  opt.step(p, g, lr);
  for (T v : p) worst = std::max(worst, std::abs(static_cast<double>(v) - expected1));
  std::fill(g.begin(), g.end(), static_cast<T>(g2));
  opt.step(p, g, lr);
  for (T v : p) worst = std::max(worst, std::abs(static_cast<double>(v) - expected2));
  return worst;
}

}  // namespace

TEST_CASE("SGD: plain, momentum, Nesterov, weight decay vs hand computation") {
  // Plain, lr 0.1: p = 1 - 0.1 * 0.5 = 0.95, then 0.95 - 0.05 = 0.9.
  Sgd<double> plain(kN);
  CHECK(all_ranks(two_steps(plain, 0.1, 0.5, 0.5, 0.95, 0.9) < 1e-15));
  CHECK(all_ranks(plain.state().empty() && plain.step_count() == 2));

  // mu 0.9, lambda 0.01, lr 0.1, g = 0.5 twice:
  //  step 1: g' = 0.5 + 0.01 * 1 = 0.51, v = 0.51, p = 1 - 0.051 = 0.949
  //  step 2: g' = 0.5 + 0.00949 = 0.50949, v = 0.459 + 0.50949 = 0.96849,
  //          p = 0.949 - 0.096849 = 0.852151
  const SgdOptions momentum{0.9, false, 0.01};
  Sgd<double> heavy(kN, momentum);
  CHECK(all_ranks(two_steps(heavy, 0.1, 0.5, 0.5, 0.949, 0.852151) < 1e-14));
  // The state is the velocity 0.96849, exposed by name for checkpoints.
  const auto state = heavy.state();
  CHECK(all_ranks(state.size() == 1 && state[0].name == "momentum" && state[0].data.size() == kN &&
                  std::abs(state[0].data[5] - 0.96849) < 1e-15));

  //  Nesterov, same setting: step 1: v = 0.51, p = 1 - 0.1 (0.51 + 0.9 * 0.51) = 0.9031
  //  step 2: g' = 0.5 + 0.009031 = 0.509031, v = 0.459 + 0.509031 = 0.968031,
  //          p = 0.9031 - 0.1 (0.509031 + 0.8712279) = 0.76507411
  Sgd<double> nesterov(kN, {0.9, true, 0.01});
  CHECK(all_ranks(two_steps(nesterov, 0.1, 0.5, 0.5, 0.9031, 0.76507411) < 1e-14));

  // The float path (what training uses) to float precision.
  Sgd<float> heavy_f(kN, momentum);
  CHECK(all_ranks(two_steps(heavy_f, 0.1, 0.5, 0.5, 0.949, 0.852151) < 1e-6));
}

TEST_CASE("Adam and AdamW vs hand computation") {
  // b1 0.9, b2 0.999, eps 1e-8, lr 0.01, g = 0.5 then -0.25:
  //  step 1: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25: p = 1 - 0.01 * 0.5 / (0.5 + 1e-8)
  //          = 0.9900000002
  //  step 2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
  //          m^ = 0.02 / 0.19, v^ = 0.00031225 / 0.001999,
  //          p = 0.9900000002 - 0.01 m^ / (sqrt(v^) + 1e-8) = 0.98733662987078
  Adam<double> adam(kN);
  CHECK(all_ranks(two_steps(adam, 0.01, 0.5, -0.25, 0.9900000002, 0.98733662987078) < 1e-13));
  const auto state = adam.state();
  CHECK(all_ranks(state.size() == 2 && state[0].name == "adam.m" && state[1].name == "adam.v" &&
                  std::abs(state[0].data[0] - 0.02) < 1e-16 &&
                  std::abs(state[1].data[kN - 1] - 0.00031225) < 1e-16));

  // AdamW (decoupled, lambda 0.1): each step also subtracts lr * lambda * p (p before the
  // step): 1 - 0.0099999998 - 0.001 = 0.9890000002; then
  // 0.9890000002 - 0.0026633702 - 0.000989 = 0.98534762987058.
  Adam<double> adamw(kN, {0.9, 0.999, 1e-8, 0.1, true});
  CHECK(all_ranks(two_steps(adamw, 0.01, 0.5, -0.25, 0.9890000002, 0.98534762987058) < 1e-13));

  Adam<float> adam_f(kN);
  CHECK(all_ranks(two_steps(adam_f, 0.01, 0.5, -0.25, 0.9900000002, 0.98733662987078) < 1e-6));
}

TEST_CASE("optimizer state can be saved and restored (checkpoint round trip)") {
  // Run 3 steps; separately run 1 step, copy the state into a fresh optimizer, run 2 more:
  // the parameters must be bit-identical.
  std::vector<float> g(kN);
  for (std::size_t i = 0; i < kN; ++i) g[i] = std::sin(static_cast<float>(i));
  std::vector<float> straight(kN, 0.5f), resumed(kN, 0.5f);
  Adam<float> a(kN);
  for (int s = 0; s < 3; ++s) a.step(straight, g, 0.01);

  Adam<float> first(kN);
  first.step(resumed, g, 0.01);
  Adam<float> second(kN);
  auto from = first.state();
  auto to = second.state();
  for (std::size_t k = 0; k < from.size(); ++k) {
    std::copy(from[k].data.begin(), from[k].data.end(), to[k].data.begin());
  }
  second.set_step_count(first.step_count());
  second.step(resumed, g, 0.01);
  second.step(resumed, g, 0.01);
  CHECK(all_ranks(straight == resumed));

  second.reset();
  CHECK(all_ranks(second.step_count() == 0 && second.state()[0].data[3] == 0.0f));
}

TEST_CASE("optimizers reject bad options and mismatched arenas") {
  const auto throws = [](auto&& fn) {
    try {
      fn();
    } catch (const ringdp::InvalidArgument&) {
      return true;
    }
    return false;
  };
  CHECK(all_ranks(throws([] { Sgd<float>(4, {1.0, false, 0}); })));
  CHECK(all_ranks(throws([] { Sgd<float>(4, {0.0, true, 0}); })));
  CHECK(all_ranks(throws([] { Sgd<float>(4, {0.5, false, -1}); })));
  CHECK(all_ranks(throws([] { Adam<float>(4, {1.0, 0.999, 1e-8, 0, false}); })));
  CHECK(all_ranks(throws([] { Adam<float>(4, {0.9, 0.999, 0.0, 0, false}); })));
  Sgd<float> sgd(4);
  std::vector<float> p(4), g(5);
  CHECK(all_ranks(throws([&] { sgd.step(p, g, 0.1); })));
  g.resize(4);
  CHECK(all_ranks(throws([&] { sgd.step(p, g, -0.1); })));
  CHECK(all_ranks(throws([&] { sgd.step(p, g, std::nan("")); })));
  CHECK(all_ranks(!throws([&] { sgd.step(p, g, 0.1); })));
}
