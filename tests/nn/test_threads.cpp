// Compute threads: the pool runs every part once and passes exceptions on; split_range
// tiles any range; a model and an optimizer on threads give deterministic bits for a fixed
// thread count and agree with one thread (the optimizer bit for bit, the model to rounding).
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/nn/thread_pool.hpp"

using ringdp::test::all_ranks;
using namespace ringdp::nn;

namespace {

// Parameters and gradients after `steps` SGD steps of `spec` on a fixed batch.
struct Trained {
  std::vector<float> parameters;
  std::vector<float> gradients;
  std::vector<float> logits;
};

Trained train(const char* spec, Eigen::Index batch, int threads, int steps) {
  auto model = Sequential<float>::from_spec(spec);
  model.initialize(5);
  Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-4});
  ThreadPool pool(threads, {.min_parallel_work = 1});  // split every kernel, however small
  model.set_thread_pool(&pool);
  sgd.set_thread_pool(&pool);
  const auto in = static_cast<Eigen::Index>(model.input_size());
  Matrix<float> x(in, batch);
  std::uint64_t state = 99;
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x.data()[i] = static_cast<float>(state >> 40) * 0x1.0p-24f - 0.25f;
  }
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (std::size_t j = 0; j < labels.size(); ++j) {
    labels[j] = static_cast<std::int32_t>(j % model.output_size());
  }
  Matrix<float> dlogits;
  Trained t;
  for (int s = 0; s < steps; ++s) {
    const Matrix<float>& logits = model.forward(x);
    t.logits.assign(logits.data(), logits.data() + logits.size());
    softmax_cross_entropy<float>(logits, labels, dlogits);
    model.backward(dlogits);
    sgd.step(model.parameters(), model.gradients(), 0.05);
  }
  t.parameters.assign(model.parameters().begin(), model.parameters().end());
  t.gradients.assign(model.gradients().begin(), model.gradients().end());
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (double{a[i]} - double{b[i]}) * (double{a[i]} - double{b[i]});
    norm += double{b[i]} * double{b[i]};
  }
  return std::sqrt(diff / norm);
}

}  // namespace

TEST_CASE("split_range tiles [0, n) in order, on aligned boundaries") {
  bool ok = true;
  for (std::size_t n : {0, 1, 15, 16, 17, 100, 1021, 4096}) {
    for (int parts : {1, 2, 3, 7, 64}) {
      for (std::size_t align : {1, 16}) {
        std::size_t next = 0;
        for (int p = 0; p < parts; ++p) {
          const IndexRange r = split_range(n, parts, p, align);
          ok = ok && r.begin == next && r.end >= r.begin && r.end <= n;
          ok = ok && (p + 1 == parts || r.end % align == 0);
          next = r.end;
        }
        ok = ok && next == n;
        // Even: the parts but the last differ by at most one aligned unit, and the last
        // (which also takes the tail of n below one unit) has at most one unit more.
        std::size_t smallest = n, largest = 0;
        for (int p = 0; p + 1 < parts; ++p) {
          smallest = std::min(smallest, split_range(n, parts, p, align).size());
          largest = std::max(largest, split_range(n, parts, p, align).size());
        }
        if (parts > 1) {
          ok = ok && largest - std::min(smallest, largest) <= align;
          ok = ok && split_range(n, parts, parts - 1, align).size() <= largest + align;
        }
      }
    }
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("ThreadPool runs every part exactly once, on distinct threads, many times") {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    CHECK(all_ranks(pool.size() == threads));
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(threads));
    std::vector<std::thread::id> ids(static_cast<std::size_t>(threads));
    for (int round = 0; round < 300; ++round) {
      pool.run([&](int part) {
        hits[static_cast<std::size_t>(part)].fetch_add(1);
        ids[static_cast<std::size_t>(part)] = std::this_thread::get_id();
      });
    }
    bool ok = ids[0] == std::this_thread::get_id();
    for (int p = 0; p < threads; ++p) {
      ok = ok && hits[static_cast<std::size_t>(p)].load() == 300;
      for (int q = 0; q < p; ++q)
        ok = ok && ids[static_cast<std::size_t>(p)] != ids[static_cast<std::size_t>(q)];
    }
    CHECK(all_ranks(ok));
  }
  CHECK_THROWS_AS(ThreadPool(0), ringdp::InvalidArgument);
}

TEST_CASE("ThreadPool: a task's exception reaches the caller after every part ended") {
  ThreadPool pool(3);
  std::atomic<int> finished{0};
  bool caught = false;
  try {
    pool.run([&](int part) {
      if (part == 2) throw std::runtime_error("part 2 failed");
      finished.fetch_add(1);
    });
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()) == "part 2 failed";
  }
  CHECK(all_ranks(caught && finished.load() == 2));
  // The pool still works, and a run() inside a task runs its parts inline.
  std::atomic<int> inner{0};
  pool.run([&](int) { pool.run([&](int) { inner.fetch_add(1); }); });
  CHECK(all_ranks(inner.load() == 9));
}

TEST_CASE("affinity_cpu_count is at least 1") { CHECK(all_ranks(affinity_cpu_count() >= 1)); }

TEST_CASE("a model on threads: the same bits run after run, and one thread's result to rounding") {
  // Awkward widths: not multiples of the 16-float split unit, a layer narrower than the
  // thread count's share, a batch of 1 and a prime batch.
  for (const char* spec : {"784-64-10", "37-29-13-5", "20-3-7"}) {
    for (Eigen::Index batch : {1, 33}) {
      CAPTURE(spec, batch);
      const Trained one = train(spec, batch, 1, 4);
      for (int threads : {2, 3}) {
        CAPTURE(threads);
        const Trained a = train(spec, batch, threads, 4);
        const Trained b = train(spec, batch, threads, 4);
        CHECK(all_ranks(same_bits(a.parameters, b.parameters) && same_bits(a.logits, b.logits) &&
                        same_bits(a.gradients, b.gradients)));
        CHECK(all_ranks(relative_difference(a.parameters, one.parameters) < 1e-6));
        CHECK(all_ranks(relative_difference(a.logits, one.logits) < 1e-5));
      }
    }
  }
}

TEST_CASE("optimizers on threads give the same bits as on one thread") {
  constexpr std::size_t kSize = 100003;  // prime: blocks end off the 16-float grid
  std::vector<float> g(kSize);
  for (std::size_t i = 0; i < kSize; ++i)
    g[i] = static_cast<float>((i * 7919) % 1000) * 1e-3f - 0.5f;
  const auto run = [&](Optimizer<float>& opt, ThreadPool* pool) {
    opt.set_thread_pool(pool);
    std::vector<float> p(kSize, 0.5f);
    for (int s = 0; s < 3; ++s) opt.step(p, g, 0.01);
    return p;
  };
  ThreadPool pool(3, {.min_parallel_work = 1});
  Sgd<float> sgd1(kSize, {.momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
  Sgd<float> sgd3(kSize, {.momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
  CHECK(all_ranks(same_bits(run(sgd1, nullptr), run(sgd3, &pool))));
  Adam<float> adam1(kSize, {.weight_decay = 1e-2, .decoupled = true});
  Adam<float> adam3(kSize, {.weight_decay = 1e-2, .decoupled = true});
  CHECK(all_ranks(same_bits(run(adam1, nullptr), run(adam3, &pool))));
}

TEST_CASE("ThreadPool with more threads than CPUs completes every run") {
  // Oversubscribed: the pool must not spin (a spinning worker would hold the core the
  // thread it waits for needs); every wait blocks, so this finishes whatever the load.
  const int threads = 3 * affinity_cpu_count() + 1;
  ThreadPool pool(threads, {.spin_us = 50});
  std::atomic<long> sum{0};
  for (int round = 0; round < 200; ++round) pool.run([&](int part) { sum.fetch_add(part); });
  const long expected = 200L * threads * (threads - 1) / 2;
  CHECK(all_ranks(sum.load() == expected));
}

TEST_CASE("plan_cores: explicit and automatic thread counts, and when the pool may spin") {
  const int cpus = affinity_cpu_count();
  const CoreBudget given = plan_cores(3, 2);
  bool ok = given.cpus == cpus && given.compute_threads == 3 && given.helper_threads == 2;
  ok = ok && given.oversubscribed() == (3 + 1 > cpus);
  ok = ok && given.more_threads_than_cpus() == (3 > cpus);
  ok = ok && (given.pool_options().spin_us == 0) == given.oversubscribed();
  // Automatic: one thread per CPU, one CPU counted for the helpers, at least one thread.
  const CoreBudget automatic = plan_cores(0, 2);
  ok = ok && automatic.compute_threads == std::max(1, cpus - 1);
  const CoreBudget alone = plan_cores(0, 0);
  ok = ok && alone.compute_threads == cpus && alone.reserved_cpus() == 0 && !alone.oversubscribed();
  ok = ok && alone.pool_options().spin_us == ThreadPoolOptions{}.spin_us;
  // A pool that blocks at once splits only kernels worth a wake-up.
  ok = ok && alone.pool_options().min_parallel_work == ThreadPoolOptions{}.min_parallel_work;
  ok = ok && pool_options_for_spin(0).min_parallel_work == kBlockingMinParallelWork;
  ok = ok && pool_options_for_spin(-5).spin_us == 0;
  ok = ok && (given.pool_options().min_parallel_work == kBlockingMinParallelWork) ==
                 given.oversubscribed();
  CHECK(all_ranks(ok));
  CHECK_THROWS_AS(plan_cores(-1, 0), ringdp::InvalidArgument);
  CHECK_THROWS_AS(plan_cores(1, -1), ringdp::InvalidArgument);
}
