// Sequential: arena layout and aliasing, the backward hook, deterministic initialisation,
// spec parsing and input validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/activations.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/model_spec.hpp"
#include "ringdp/nn/sequential.hpp"

using ringdp::test::all_ranks;
using namespace ringdp::nn;

namespace {

template <class Fn>
std::string invalid_argument_message(Fn&& fn) {
  try {
    fn();
  } catch (const ringdp::InvalidArgument& e) {
    return e.what();
  }
  return {};
}

template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

}  // namespace

TEST_CASE("spec parsing") {
  CHECK(
      all_ranks(parse_model_spec("784-512-256-10") == std::vector<std::size_t>{784, 512, 256, 10}));
  CHECK(all_ranks(parse_model_spec("3-1") == std::vector<std::size_t>{3, 1}));
  for (const char* bad : {"", "784", "784-", "-10", "784--10", "784-0-10", "784-a-10", "784 -10",
                          "+784-10", "784-1e3", "99999999999999999999999-10", "2000000-10"}) {
    const std::string msg = invalid_argument_message([&] { (void)parse_model_spec(bad); });
    INFO("spec \"" << bad << "\" gave: " << msg);
    CHECK(all_ranks(msg.find("invalid model spec \"" + std::string(bad) + "\"") !=
                    std::string::npos));
  }
  const std::string msg =
      invalid_argument_message([] { (void)Sequential<float>::from_spec("784-x-10"); });
  CHECK(all_ranks(msg.find("'x' is not a positive integer") != std::string::npos));
}

TEST_CASE("the MLP of the issue has the hand-counted size") {
  const auto model = Sequential<float>::from_spec("784-512-256-10");
  // (784*512 + 512) + (512*256 + 256) + (256*10 + 10) = 401920 + 131328 + 2570.
  CHECK(all_ranks(model.parameter_count() == 535818));
  CHECK(all_ranks(model.layer_count() == 5 && model.input_size() == 784 &&
                  model.output_size() == 10));
  CHECK(all_ranks(model.layer(1).kind() == "relu" && model.layer(4).kind() == "dense"));
}

TEST_CASE("arena layout: last layer first, and the layers' maps alias the arena") {
  auto model = Sequential<double>::from_spec("5-4-3-2");
  // Layers: dense0 (4x5 + 4 = 24), relu1, dense2 (3x4 + 3 = 15), relu3, dense4 (2x3 + 2 = 8)
  // stored last first: dense4 at [0, 8), dense2 at [8, 23), dense0 at [23, 47).
  CHECK(all_ranks(model.parameter_count() == 47));
  CHECK(all_ranks(model.layer_range(4) == ArenaRange{0, 8}));
  CHECK(all_ranks(model.layer_range(3) == ArenaRange{8, 0}));
  CHECK(all_ranks(model.layer_range(2) == ArenaRange{8, 15}));
  CHECK(all_ranks(model.layer_range(0) == ArenaRange{23, 24}));
  const auto& t = model.tensors();
  CHECK(all_ranks(t.size() == 6 && t[0].name == "layer4.dense.weight" && t[0].offset == 0 &&
                  t[0].rows == 2 && t[0].cols == 3 && t[1].name == "layer4.dense.bias" &&
                  t[1].offset == 6 && t[5].name == "layer0.dense.bias" && t[5].offset == 43));

  auto& last = dynamic_cast<Dense<double>&>(model.layer(4));
  auto& first = dynamic_cast<Dense<double>&>(model.layer(0));
  double* p = model.parameters().data();
  double* g = model.gradients().data();
  CHECK(all_ranks(last.weight().data() == p && last.bias().data() == p + 6 &&
                  last.weight_grad().data() == g && last.bias_grad().data() == g + 6 &&
                  first.weight().data() == p + 23 && first.bias().data() == p + 43));
  // Writes through the arena show in the maps and the reverse (column-major weights).
  p[23 + 1] = 7.5;  // first.weight()(1, 0)
  first.bias()(3) = -2.25;
  CHECK(all_ranks(first.weight()(1, 0) == 7.5 && p[46] == -2.25));
}

TEST_CASE("backward overwrites the gradient arena and reports a growing prefix") {
  auto model = Sequential<float>::from_spec("6-5-4-3");
  model.initialize(9);
  Matrix<float> x = Matrix<float>::Random(6, 4);
  const std::vector<std::int32_t> labels = {0, 1, 2, 0};
  Matrix<float> dlogits;
  softmax_cross_entropy<float>(model.forward(x), labels, dlogits);

  std::vector<std::size_t> order;
  std::vector<ArenaRange> ranges;
  std::vector<std::vector<float>> snapshots;  // the finished prefix, at each hook call
  const auto grads = model.gradients();
  model.backward(dlogits, [&](std::size_t layer, ArenaRange r) {
    order.push_back(layer);
    ranges.push_back(r);
    snapshots.emplace_back(grads.begin(), grads.begin() + static_cast<std::ptrdiff_t>(r.end()));
  });
  CHECK(all_ranks(order == std::vector<std::size_t>{4, 3, 2, 1, 0}));
  bool contiguous = ranges.front().offset == 0 && ranges.back().end() == grads.size();
  for (std::size_t k = 1; k < ranges.size(); ++k) {
    contiguous = contiguous && ranges[k].offset == ranges[k - 1].end();
  }
  CHECK(all_ranks(contiguous));
  // What a reducer would have taken at each call is what the arena holds at the end.
  bool final_at_hook = true;
  for (const auto& snap : snapshots) {
    final_at_hook = final_at_hook && std::equal(snap.begin(), snap.end(), grads.begin());
  }
  CHECK(all_ranks(final_at_hook));

  // A second backward overwrites (does not add): the arena holds the same bits again.
  const std::vector<float> once(grads.begin(), grads.end());
  model.backward(dlogits);
  CHECK(all_ranks(std::equal(once.begin(), once.end(), grads.begin())));

  // Changing the batch size works (buffers resize), and back again gives the same bits.
  const Matrix<float> big = Matrix<float>::Random(6, 9);
  CHECK(all_ranks(model.forward(big).cols() == 9));
  model.forward(x);
  model.backward(dlogits);
  CHECK(all_ranks(std::equal(once.begin(), once.end(), grads.begin())));
}

TEST_CASE("move_gradients puts the gradient arena in the allocator's memory, same bits") {
  auto model = Sequential<float>::from_spec("6-5-4-3");
  model.initialize(9);
  const Matrix<float> x = Matrix<float>::Random(6, 4);
  const std::vector<std::int32_t> labels = {0, 1, 2, 0};
  Matrix<float> dlogits;
  softmax_cross_entropy<float>(model.forward(x), labels, dlogits);
  model.backward(dlogits);
  const std::vector<float> before(model.gradients().begin(), model.gradients().end());

  // The caller's memory: a vector with room to align, released when the model lets go.
  auto owner = std::make_shared<std::vector<float>>(model.parameter_count() + 16, -1.0f);
  std::weak_ptr<std::vector<float>> watch = owner;
  float* where = owner->data();
  while (reinterpret_cast<std::uintptr_t>(where) % 64 != 0) ++where;
  model.move_gradients([&](std::size_t n) {
    REQUIRE(n == model.parameter_count());
    return ArenaMemory<float>{where, std::exchange(owner, nullptr)};
  });
  // Copied over, and the layers write there: backward gives the same bits in the new place.
  bool moved = model.gradients().data() == where &&
               same_bits<float>(model.gradients(), std::span<const float>(before));
  std::fill(model.gradients().begin(), model.gradients().end(), 0.0f);
  model.forward(x);
  model.backward(dlogits);
  moved = moved && same_bits<float>(model.gradients(), std::span<const float>(before));
  CHECK(all_ranks(moved));

  // Back to ordinary memory: the caller's memory is released, the bits stay.
  model.move_gradients({});
  CHECK(all_ranks(watch.expired() && model.gradients().data() != where &&
                  same_bits<float>(model.gradients(), std::span<const float>(before))));

  // Memory that is not aligned to 64 bytes is refused, and the model is left as it was.
  const float* kept = model.gradients().data();
  std::vector<float> odd(model.parameter_count() + 32);
  float* misaligned = odd.data();
  while (reinterpret_cast<std::uintptr_t>(misaligned) % 64 != 4) ++misaligned;
  const std::string message = invalid_argument_message([&] {
    model.move_gradients([&](std::size_t) { return ArenaMemory<float>{misaligned, nullptr}; });
  });
  CHECK(
      all_ranks(message.find("aligned") != std::string::npos && model.gradients().data() == kept));
}

TEST_CASE("initialisation is deterministic and has the He / Xavier scale") {
  auto a = Sequential<float>::from_spec("784-512-256-10");
  auto b = Sequential<float>::from_spec("784-512-256-10");
  auto c = Sequential<float>::from_spec("784-512-256-10");
  a.initialize(1234);
  b.initialize(1234);
  c.initialize(1235);
  CHECK(all_ranks(same_bits<float>(a.parameters(), b.parameters())));
  CHECK(all_ranks(!same_bits<float>(a.parameters(), c.parameters())));
  // Re-initialising with the same seed gives the same bits again (no hidden state).
  b.initialize(1235);
  CHECK(all_ranks(same_bits<float>(b.parameters(), c.parameters())));

  // A double model from the same seed is the float model before rounding.
  auto d = Sequential<double>::from_spec("784-512-256-10");
  d.initialize(1234);
  bool rounded = true;
  for (std::size_t i = 0; i < d.parameter_count(); ++i) {
    rounded = rounded && static_cast<float>(d.parameters()[i]) == a.parameters()[i];
  }
  CHECK(all_ranks(rounded));

  // Sample statistics against the textbook scales: He N(0, 2/784) for the first layer
  // (401408 weights: the sample std is within 1% with overwhelming probability, and the
  // seed is fixed), Xavier N(0, 2/(256+10)) for the last, zero biases.
  const auto stats = [](const Eigen::Map<Matrix<float>>& w) {
    const double mean = w.cast<double>().mean();
    const double var = (w.cast<double>().array() - mean).square().mean();
    return std::pair{mean, std::sqrt(var)};
  };
  auto& first = dynamic_cast<Dense<float>&>(a.layer(0));
  auto& last = dynamic_cast<Dense<float>&>(a.layer(4));
  const auto [m0, s0] = stats(first.weight());
  const auto [m4, s4] = stats(last.weight());
  INFO("first layer mean " << m0 << " std " << s0 << "; last layer std " << s4);
  CHECK(all_ranks(std::abs(m0) < 1e-3 && std::abs(s0 / std::sqrt(2.0 / 784) - 1) < 0.01));
  CHECK(all_ranks(std::abs(s4 / std::sqrt(2.0 / 266) - 1) < 0.05));
  CHECK(all_ranks(first.bias().isZero(0.0f) && last.bias().isZero(0.0f)));
}

TEST_CASE("NormalGenerator: standard normal moments") {
  NormalGenerator rng(77);
  double sum = 0, sum2 = 0, sum4 = 0;
  constexpr int kCount = 200000;
  for (int i = 0; i < kCount; ++i) {
    const double z = rng.normal();
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
  }
  // Standard errors: mean 1/sqrt(n) = 0.0022, variance sqrt(2/n) = 0.0032, 4th moment
  // sqrt(96/n) = 0.022; the bounds are about 5 standard errors.
  CHECK(all_ranks(std::abs(sum / kCount) < 0.012));
  CHECK(all_ranks(std::abs(sum2 / kCount - 1) < 0.016));
  CHECK(all_ranks(std::abs(sum4 / kCount - 3) < 0.11));
}

TEST_CASE("Sequential rejects inconsistent layers and inputs") {
  CHECK(all_ranks(!invalid_argument_message([] {
                     std::vector<std::unique_ptr<Layer<float>>> layers;
                     layers.push_back(std::make_unique<Dense<float>>(4, 3));
                     layers.push_back(std::make_unique<ReLU<float>>(5));
                     Sequential<float> m(std::move(layers));
                   }).empty()));
  CHECK(all_ranks(!invalid_argument_message([] {
                     Sequential<float> m(std::vector<std::unique_ptr<Layer<float>>>{});
                   }).empty()));
  CHECK(all_ranks(!invalid_argument_message([] { Dense<float>(0, 3); }).empty()));

  auto model = Sequential<float>::from_spec("4-3-2");
  Matrix<float> dlogits = Matrix<float>::Zero(2, 3);
  // backward before any forward, wrong input rows, empty batch, wrong dlogits shape.
  CHECK(all_ranks(!invalid_argument_message([&] { model.backward(dlogits); }).empty()));
  CHECK(all_ranks(
      !invalid_argument_message([&] { model.forward(Matrix<float>::Zero(5, 3)); }).empty()));
  CHECK(all_ranks(
      !invalid_argument_message([&] { model.forward(Matrix<float>::Zero(4, 0)); }).empty()));
  model.forward(Matrix<float>::Zero(4, 3));
  CHECK(all_ranks(invalid_argument_message([&] { model.backward(dlogits); }).empty()));
  CHECK(all_ranks(
      !invalid_argument_message([&] { model.backward(Matrix<float>::Zero(2, 4)); }).empty()));
}

TEST_CASE("forward uses its input in place (a matrix, a map, a column block) or evaluates it") {
  auto model = Sequential<float>::from_spec("6-5-4-3");
  model.initialize(2);
  const Matrix<float> x = Matrix<float>::Random(6, 7);
  const std::vector<std::int32_t> labels = {0, 1, 2, 0, 1, 2, 0};
  Matrix<float> dlogits;
  softmax_cross_entropy<float>(model.forward(x), labels, dlogits);
  model.backward(dlogits);
  const std::vector<float> reference(model.gradients().begin(), model.gradients().end());
  const auto gradients_match = [&] {
    return same_bits<float>(model.gradients(), std::span<const float>(reference));
  };

  // Columns 1..7 of a 9-column buffer: a block with an offset, read in place.
  std::vector<float> buffer(6 * 9, 0.0f);
  std::memcpy(buffer.data() + 6, x.data(), sizeof(float) * 42);
  const Eigen::Map<const Matrix<float>> all(buffer.data(), 6, 9);
  model.forward(all.middleCols(1, 7));
  model.backward(dlogits);
  CHECK(all_ranks(gradients_match()));
  // In place indeed: backward reads the caller's buffer, so a change after forward shows
  // (the first layer's weight gradient is dy x^T).
  model.forward(all.middleCols(1, 7));
  buffer[6] = std::nanf("");
  model.backward(dlogits);
  CHECK(all_ranks(!gradients_match()));

  // An expression is evaluated into the model's own buffer: the same bits as the matrix.
  model.forward(x + Matrix<float>::Zero(6, 7));
  model.backward(dlogits);
  CHECK(all_ranks(gradients_match()));
}
