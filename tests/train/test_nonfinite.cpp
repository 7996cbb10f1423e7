// Non-finite values in training: a NaN or Inf that enters ONE rank's batch stops the step
// on every rank with the same message (naming the global step and the rank or layer), or,
// with skip_nonfinite, the step makes no update anywhere and the parameters equal those of
// a reference run that never saw that step.
//
// The bad values come in through the data, as they would in a real run: a batch source
// that writes a NaN or a huge value into one sample of one rank's batch at one step. The
// model parameters are set by hand where a test needs a particular path (a finite loss
// with a non-finite gradient), so what is expected follows from arithmetic, not from
// running the code under test.

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/non_finite.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Communicator;
using ringdp::test::all_ranks;
using ringdp::test::hash_bytes;
using ringdp::test::same_on_all_ranks;
using namespace ringdp::train;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Where and what to inject: feature `feature` of the first sample of rank `rank`'s batch
// at (epoch, step_in_epoch), optionally with that sample's label replaced.
struct Injection {
  std::uint64_t epoch = 0;
  std::int64_t step = 0;
  int rank = 0;
  float value = kNaN;
  Eigen::Index feature = 0;
  std::optional<std::int32_t> label = std::nullopt;
};

// A BatchSource that passes another one's batches through and corrupts one of them.
class InjectingSource final : public BatchSource {
 public:
  InjectingSource(BatchSource& base, int rank, Injection injection)
      : base_(base), rank_(rank), injection_(injection) {}
  [[nodiscard]] std::size_t steps_per_epoch() const override { return base_.steps_per_epoch(); }
  void start_epoch(std::uint64_t epoch) override {
    epoch_ = epoch;
    step_ = 0;
    base_.start_epoch(epoch);
  }
  bool next(Batch& batch) override {
    if (!base_.next(batch)) return false;
    if (rank_ == injection_.rank && epoch_ == injection_.epoch && step_ == injection_.step) {
      batch.x(injection_.feature, 0) = injection_.value;
      if (injection_.label) batch.labels[0] = *injection_.label;
    }
    ++step_;
    return true;
  }

 private:
  BatchSource& base_;
  int rank_;
  Injection injection_;
  std::uint64_t epoch_ = 0;
  std::int64_t step_ = 0;
};

// Collective: true when `text` is the same on every rank.
bool same_text(const std::string& text) {
  return same_on_all_ranks(hash_bytes(text.data(), text.size()));
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// What one rank saw of a step that should throw on every rank.
struct Caught {
  bool thrown = false;
  std::string what;
  std::int64_t step = -2;
  int layer = -2;
  int loss_rank = -2;
  bool collective = false;
};

template <class Fn>
Caught catch_nonfinite(Fn&& fn) {
  Caught c;
  try {
    fn();
  } catch (const NonFiniteError& e) {
    c = {true, e.what(), e.step(), e.layer(), e.loss_rank(), e.collective()};
  }
  return c;
}

// The last rank: at 1 rank that is rank 0, otherwise a rank other than the printing one.
int culprit(const Communicator& comm) { return comm.size() - 1; }

}  // namespace

TEST_CASE("a NaN in one rank's batch stops the step on every rank with the same message",
          "[train][nonfinite]") {
  const Communicator world(MPI_COMM_WORLD);
  // One Dense layer: a NaN feature makes every logit of its sample NaN, hence the loss.
  auto [x, labels] = ringdp::test::teacher_data(48, 12, 4, 3);
  auto model = ringdp::nn::Sequential<float>::from_spec("12-4");
  model.initialize(5);
  ringdp::nn::Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9});
  Trainer trainer(world, model, sgd);
  InMemorySource base(x, labels, world.rank(), world.size(), {.batch_size = 4, .seed = 7});
  const auto steps = static_cast<std::int64_t>(base.steps_per_epoch());
  // In the second epoch, so that the message must give the global step, not the epoch's.
  const Injection at{.epoch = 1, .step = 1, .rank = culprit(world), .value = kNaN};
  InjectingSource source(base, world.rank(), at);

  trainer.train_epoch(source);  // epoch 0: clean
  std::vector<float> before;
  const Caught c = catch_nonfinite([&] {
    // Snapshot the parameters just before the bad step: run step 0 of epoch 1 by hand.
    source.start_epoch(1);
    Batch batch;
    source.next(batch);
    trainer.step(batch, steps);
    before = copy(model.parameters());
    source.next(batch);
    trainer.step(batch, steps);
  });
  const std::int64_t expected_step = steps + 1;
  const std::string expected =
      fmt::format("ringdp: step {}: non-finite loss on rank {}", expected_step, culprit(world));
  CAPTURE(c.what, expected);
  CHECK(all_ranks(c.thrown));
  CHECK(all_ranks(c.what == expected));
  CHECK(same_text(c.what));
  CHECK(all_ranks(c.step == expected_step && c.layer == -1 && c.loss_rank == culprit(world) &&
                  c.collective));
  // The failed step changed nothing, and the trainer goes on: a clean step after it keeps
  // the replicas identical.
  CHECK(all_ranks(same_bits(model.parameters(), before)));
  CHECK(all_ranks(trainer.position().global_step == expected_step));
  Batch clean;
  base.start_epoch(1);
  base.next(clean);
  const StepResult r = trainer.step(clean, steps);
  CHECK(all_ranks(!r.skipped && std::isfinite(r.loss)));
  const auto params = model.parameters();
  CHECK(same_on_all_ranks(hash_bytes(params.data(), params.size_bytes())));
}

TEST_CASE("NaN on several ranks: the message names the lowest and counts the others",
          "[train][nonfinite]") {
  const Communicator world(MPI_COMM_WORLD);
  auto [x, labels] = ringdp::test::teacher_data(30, 6, 3, 17);
  auto model = ringdp::nn::Sequential<float>::from_spec("6-3");
  model.initialize(1);
  ringdp::nn::Sgd<float> sgd(model.parameter_count());
  Trainer trainer(world, model, sgd);
  InMemorySource base(x, labels, world.rank(), world.size(), {.batch_size = 2, .seed = 2});
  // Every rank from `lowest` up injects: the minimum over the ranks must be `lowest`.
  const int lowest = std::min(1, world.size() - 1);
  const int bad = world.size() - lowest;
  Batch batch;
  base.start_epoch(0);
  base.next(batch);
  if (world.rank() >= lowest) batch.x(2, 1) = kNaN;
  const Caught c = catch_nonfinite(
      [&] { trainer.step(batch, static_cast<std::int64_t>(base.steps_per_epoch())); });
  std::string expected = fmt::format("ringdp: step 0: non-finite loss on rank {}", lowest);
  if (bad == 2) expected += " and 1 more rank";
  if (bad > 2) expected += fmt::format(" and {} more ranks", bad - 1);
  CAPTURE(c.what, expected);
  CHECK(all_ranks(c.thrown && c.what == expected && c.loss_rank == lowest));
}

TEST_CASE("an Inf loss on one rank stops the step on every rank, or is skipped",
          "[train][nonfinite]") {
  const Communicator world(MPI_COMM_WORLD);
  // One Dense layer 4 -> 3 whose first input column is (+2, -2, -2). A sample whose first
  // feature is 1e38 (finite) and whose label is 1 has logits z0 ~ +2e38, z1 ~ -2e38, so
  // log-softmax(z)_1 = z1 - max(z) = -4e38, beyond float: the loss is +Inf while every
  // logit, the softmax and the gradient stay finite.
  auto [x, labels] = ringdp::test::teacher_data(24, 4, 3, 11);
  for (const bool skip : {false, true}) {
    CAPTURE(skip);
    auto model = ringdp::nn::Sequential<float>::from_spec("4-3");
    model.initialize(2);
    auto& dense = dynamic_cast<ringdp::nn::Dense<float>&>(model.layer(0));
    dense.weight().col(0) << 2.0f, -2.0f, -2.0f;
    ringdp::nn::Sgd<float> sgd(model.parameter_count());
    Trainer trainer(world, model, sgd, {.skip_nonfinite = skip});
    InMemorySource base(x, labels, world.rank(), world.size(), {.batch_size = 2, .seed = 1});
    const Injection at{.step = 1, .rank = culprit(world), .value = 1e38f, .label = 1};
    InjectingSource source(base, world.rank(), at);
    const auto steps = static_cast<std::int64_t>(source.steps_per_epoch());

    // The premise, checked on the culprit's own batch without the trainer: an Inf loss.
    source.start_epoch(0);
    Batch batch;
    source.next(batch);
    source.next(batch);
    ringdp::nn::Matrix<float> grad;
    const auto local =
        ringdp::nn::softmax_cross_entropy<float>(model.forward(batch.x), batch.labels, grad);
    const bool premise = world.rank() != culprit(world) ||
                         (std::isinf(local.loss_sum) && local.loss_sum > 0 && grad.allFinite());
    CHECK(all_ranks(premise));

    const std::string expected =
        fmt::format("ringdp: step 1: non-finite loss on rank {}", culprit(world));
    if (!skip) {
      const Caught c = catch_nonfinite([&] { trainer.train_epoch(source); });
      CAPTURE(c.what);
      CHECK(all_ranks(c.thrown && c.what == expected && c.step == 1 && c.layer == -1));
      CHECK(same_text(c.what));
    } else {
      source.start_epoch(0);
      std::vector<StepResult> results;
      for (std::int64_t s = 0; s < steps; ++s) {
        source.next(batch);
        results.push_back(trainer.step(batch, steps));
      }
      bool ok = results[1].skipped && results[1].nonfinite == expected;
      for (std::size_t s = 0; s < results.size(); ++s) {
        if (s != 1) ok = ok && !results[s].skipped && std::isfinite(results[s].loss);
      }
      CHECK(all_ranks(ok));
      const auto params = model.parameters();
      CHECK(same_on_all_ranks(hash_bytes(params.data(), params.size_bytes())));
    }
  }
}

TEST_CASE("an Inf input that leaves the loss finite is caught in the averaged gradient",
          "[train][nonfinite]") {
  const Communicator world(MPI_COMM_WORLD);
  // 4 -> 3 -> ReLU -> 2. The first layer's weights on input 0 are all -1, so an input of
  // +Inf there makes every hidden pre-activation of that sample -Inf; ReLU turns them into
  // 0, so the logits (= the output bias) and the loss stay finite. In backward the ReLU
  // passes no gradient for that sample (output 0), and the weight gradient of layer 0,
  // dW = dz x^T, gets 0 * Inf = NaN in input 0's column: 3 of its 12 values, nothing else.
  auto [x, labels] = ringdp::test::teacher_data(24, 4, 2, 13);
  auto model = ringdp::nn::Sequential<float>::from_spec("4-3-2");
  model.initialize(4);
  auto& dense = dynamic_cast<ringdp::nn::Dense<float>&>(model.layer(0));
  dense.weight().col(0).setConstant(-1.0f);
  ringdp::nn::Sgd<float> sgd(model.parameter_count());
  Trainer trainer(world, model, sgd);
  InMemorySource base(x, labels, world.rank(), world.size(), {.batch_size = 2, .seed = 3});
  InjectingSource source(base, world.rank(), {.step = 2, .rank = culprit(world), .value = kInf});

  const auto before = copy(model.parameters());
  std::vector<float> at_step;
  const Caught c = catch_nonfinite([&] {
    source.start_epoch(0);
    Batch batch;
    const auto steps = static_cast<std::int64_t>(source.steps_per_epoch());
    for (std::int64_t s = 0; s < steps; ++s) {
      source.next(batch);
      if (s == 2) at_step = copy(model.parameters());
      trainer.step(batch, steps);
    }
  });
  const std::string expected =
      "ringdp: step 2: non-finite averaged gradient in layer 0 (Dense 4x3, weight): 3 of 12 "
      "values are NaN or Inf";
  CAPTURE(c.what);
  CHECK(all_ranks(c.thrown && c.what == expected));
  CHECK(same_text(c.what));
  CHECK(all_ranks(c.step == 2 && c.layer == 0 && c.loss_rank == -1));
  // Two clean steps changed the parameters; the failed one did not.
  CHECK(all_ranks(!same_bits(at_step, before) && same_bits(model.parameters(), at_step)));
}

TEST_CASE("skipping a non-finite step equals a run that never had that step",
          "[train][nonfinite]") {
  const Communicator world(MPI_COMM_WORLD);
  auto [x, labels] = ringdp::test::teacher_data(48, 12, 4, 21);
  struct Case {
    const char* name;
    const char* spec;
    Injection injection;
    bool adam;
  };
  // A NaN through a ReLU MLP (SGD with momentum, then Adam, whose step count must not
  // advance either), and an Inf that only the gradient check sees (as in the test above).
  const std::vector<Case> cases = {
      {"NaN, sgd", "12-10-4", {.step = 2, .rank = culprit(world), .value = kNaN}, false},
      {"NaN, adam", "12-10-4", {.step = 2, .rank = culprit(world), .value = kNaN}, true},
      {"Inf via the gradient, sgd",
       "12-10-4",
       {.step = 1, .rank = culprit(world), .value = kInf, .feature = 0},
       false},
  };
  for (const Case& k : cases) {
    CAPTURE(k.name);
    const bool gradient_path = std::isinf(k.injection.value);
    auto make_model = [&] {
      auto m = ringdp::nn::Sequential<float>::from_spec(k.spec);
      m.initialize(8);
      if (gradient_path) {
        dynamic_cast<ringdp::nn::Dense<float>&>(m.layer(0)).weight().col(0).setConstant(-1.0f);
      }
      return m;
    };
    auto make_optimizer = [&](std::size_t n) -> std::unique_ptr<ringdp::nn::Optimizer<float>> {
      if (k.adam) return std::make_unique<ringdp::nn::Adam<float>>(n);
      return std::make_unique<ringdp::nn::Sgd<float>>(n, ringdp::nn::SgdOptions{.momentum = 0.9});
    };
    constexpr int kEpochs = 2;

    // Run A: the bad batch comes in at (epoch 0, step k) on one rank; the step is skipped.
    auto model_a = make_model();
    auto opt_a = make_optimizer(model_a.parameter_count());
    Trainer a(world, model_a, *opt_a, {.skip_nonfinite = true});
    InMemorySource base_a(x, labels, world.rank(), world.size(), {.batch_size = 3, .seed = 5});
    InjectingSource source_a(base_a, world.rank(), k.injection);
    std::int64_t skipped = 0;
    std::int64_t steps_run = 0;
    for (int e = 0; e < kEpochs; ++e) {
      const EpochResult r = a.train_epoch(source_a);
      skipped += r.skipped_steps;
      steps_run += r.steps;
    }

    // Run B, the reference: the same data without the bad value, and the batch of that
    // step left out on every rank.
    auto model_b = make_model();
    auto opt_b = make_optimizer(model_b.parameter_count());
    Trainer b(world, model_b, *opt_b);
    InMemorySource base_b(x, labels, world.rank(), world.size(), {.batch_size = 3, .seed = 5});
    const auto steps = static_cast<std::int64_t>(base_b.steps_per_epoch());
    Batch batch;
    for (int e = 0; e < kEpochs; ++e) {
      base_b.start_epoch(static_cast<std::uint64_t>(e));
      for (std::int64_t s = 0; s < steps; ++s) {
        base_b.next(batch);
        if (e == 0 && s == k.injection.step) continue;
        b.step(batch, steps);
      }
    }

    // Run C: everything, no bad value: it must differ from A, or the test proves nothing.
    auto model_c = make_model();
    auto opt_c = make_optimizer(model_c.parameter_count());
    Trainer c(world, model_c, *opt_c);
    InMemorySource base_c(x, labels, world.rank(), world.size(), {.batch_size = 3, .seed = 5});
    for (int e = 0; e < kEpochs; ++e) c.train_epoch(base_c);

    CHECK(all_ranks(skipped == 1 && steps_run == kEpochs * steps));
    CHECK(all_ranks(same_bits(model_a.parameters(), model_b.parameters())));
    bool state_ok = opt_a->step_count() == opt_b->step_count();
    for (std::size_t i = 0; i < opt_a->state().size(); ++i) {
      state_ok = state_ok && same_bits(opt_a->state()[i].data, opt_b->state()[i].data);
    }
    CHECK(all_ranks(state_ok));
    CHECK(all_ranks(!same_bits(model_a.parameters(), model_c.parameters())));
    const auto params = model_a.parameters();
    CHECK(same_on_all_ranks(hash_bytes(params.data(), params.size_bytes())));
  }
}
