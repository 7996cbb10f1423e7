// Single-process training throughput of a Sequential MLP: forward, softmax cross-entropy,
// backward and an SGD step on synthetic batches, one thread. Reports samples/s and the
// per-phase split (medians over repeats) as a table, and optionally as CSV.
//
// This is the 1-rank baseline of bench/train_throughput without data loading or MPI:
// it isolates the compute that gradient averaging must hide behind.
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <ringdp/ringdp.hpp>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using ringdp::nn::Matrix;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU time of the process (all its threads): on a shared machine, wall time also counts
// the time other processes held the cores; both are reported. With one compute thread,
// samples per CPU second is the single-core speed whatever the load; with several it
// shows what the threads cost.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Phases {
  double forward = 0, loss = 0, backward = 0, optimizer = 0;
  [[nodiscard]] double total() const { return forward + loss + backward + optimizer; }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringdp nn throughput: single-process MLP training steps per second"};
  std::string spec = "784-512-256-10";
  int batch = 64;
  int steps = 200;
  int warmup = 20;
  int repeats = 5;
  int threads = 1;
  int spin_us = ringdp::nn::ThreadPoolOptions{}.spin_us;
  std::uint64_t seed = 1;
  std::string csv;
  app.add_option("--spec", spec, "Model spec (widths joined by '-')")->capture_default_str();
  app.add_option("--batch", batch, "Samples per step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "Timed steps per repeat")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "Untimed steps first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", repeats, "Repeats (medians are reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Compute threads (a ringdp::nn::ThreadPool)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--spin-us", spin_us,
                 "How long the pool's threads spin before they block (0: block at once, as the "
                 "trainer's pool does when its threads and helpers exceed the CPUs)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "Initialisation and data seed")->capture_default_str();
  app.add_option("--csv", csv, "Also write one CSV row per repeat to this file");
  CLI11_PARSE(app, argc, argv);

  try {
    ringdp::nn::ThreadPool pool(threads, ringdp::nn::pool_options_for_spin(spin_us));
    auto model = ringdp::nn::Sequential<float>::from_spec(spec);
    model.initialize(seed);
    ringdp::nn::Sgd<float> sgd(model.parameter_count(), {0.9, false, 0.0});
    model.set_thread_pool(&pool);
    sgd.set_thread_pool(&pool);

    // A few synthetic batches (pixel-like values in [0, 1), uniform labels), cycled, so
    // the timed loop does no data generation and touches fresh inputs every step.
    constexpr int kBatches = 8;
    std::mt19937_64 rng(seed);
    std::vector<Matrix<float>> inputs;
    std::vector<std::vector<std::int32_t>> labels(kBatches);
    const auto classes = static_cast<std::uint64_t>(model.output_size());
    for (int b = 0; b < kBatches; ++b) {
      Matrix<float> x(static_cast<Eigen::Index>(model.input_size()), batch);
      for (Eigen::Index i = 0; i < x.size(); ++i) {
        x.data()[i] = static_cast<float>(rng() >> 40) * 0x1.0p-24f;
      }
      inputs.push_back(std::move(x));
      for (int j = 0; j < batch; ++j)
        labels[b].push_back(static_cast<std::int32_t>(rng() % classes));
    }

    Matrix<float> dlogits;
    double last_loss = 0;
    const auto run = [&](int count, Phases* phases) {
      for (int s = 0; s < count; ++s) {
        const int b = s % kBatches;
        const auto t0 = Clock::now();
        const Matrix<float>& logits = model.forward(inputs[b]);
        const auto t1 = Clock::now();
        last_loss = ringdp::nn::softmax_cross_entropy<float>(logits, labels[b], dlogits).mean_loss;
        const auto t2 = Clock::now();
        model.backward(dlogits);
        const auto t3 = Clock::now();
        sgd.step(model.parameters(), model.gradients(), 0.01);
        const auto t4 = Clock::now();
        if (phases) {
          phases->forward += seconds(t0, t1);
          phases->loss += seconds(t1, t2);
          phases->backward += seconds(t2, t3);
          phases->optimizer += seconds(t3, t4);
        }
      }
    };

    run(warmup, nullptr);
    std::vector<double> rate, cpu_rate, fwd, bwd, opt, lss;
    std::ofstream out;
    if (!csv.empty()) {
      // Written under a temporary name and renamed at the end, so an interrupted run never
      // leaves a truncated CSV behind.
      out.open(csv + ".tmp");
      if (!out) throw ringdp::IoError(fmt::format("cannot write {}", csv));
      out << "spec,batch,threads,repeat,steps,samples_per_s,cpu_samples_per_s,forward_ms,loss_ms,"
             "backward_ms,"
             "optimizer_ms\n";
    }
    for (int r = 0; r < repeats; ++r) {
      Phases p;
      const double cpu0 = process_cpu_seconds();
      run(steps, &p);
      cpu_rate.push_back(static_cast<double>(batch) * steps / (process_cpu_seconds() - cpu0));
      const double per_step_ms = 1e3 / steps;
      rate.push_back(static_cast<double>(batch) * steps / p.total());
      fwd.push_back(p.forward * per_step_ms);
      lss.push_back(p.loss * per_step_ms);
      bwd.push_back(p.backward * per_step_ms);
      opt.push_back(p.optimizer * per_step_ms);
      if (out) {
        out << fmt::format("{},{},{},{},{},{:.1f},{:.1f},{:.4f},{:.4f},{:.4f},{:.4f}\n", spec,
                           batch, threads, r, steps, rate.back(), cpu_rate.back(), fwd.back(),
                           lss.back(), bwd.back(), opt.back());
      }
    }

    fmt::print(
        "# ringdp {} ({}), model {} ({} parameters), batch {}, {} compute thread(s) on {} "
        "CPU(s), SIMD {}\n# GEMM {}\n",
        RINGDP_VERSION_STRING, RINGDP_GIT_HASH, spec, model.parameter_count(), batch, pool.size(),
        ringdp::nn::affinity_cpu_count(), Eigen::SimdInstructionSetsInUse(),
        ringdp::nn::gemm_library());
#ifndef __AVX2__
    fmt::print(
        "# note: compiled for baseline x86-64, so Eigen's GEMM uses SSE2 only; configure with\n"
        "#       -DRINGDP_NATIVE=ON for AVX2/FMA (about 2x faster on this kind of machine)\n");
#endif
    fmt::print("# {} repeats of {} steps after {} warm-up steps; medians (min-max for samples/s)\n",
               repeats, steps, warmup);
    fmt::print("{:>10} {:>14} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "samples/s", "cpu_samples/s",
               "fwd_ms", "loss_ms", "bwd_ms", "opt_ms", "step_ms");
    fmt::print("{:>10.0f} {:>14.0f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f}\n", median(rate),
               median(cpu_rate), median(fwd), median(lss), median(bwd), median(opt),
               1e3 * batch / median(rate));
    fmt::print("# samples/s min {:.0f} max {:.0f}; final loss {:.4f}\n",
               *std::min_element(rate.begin(), rate.end()),
               *std::max_element(rate.begin(), rate.end()), last_loss);
    if (out) {
      out.close();
      if (!out) throw ringdp::IoError(fmt::format("error writing {}.tmp", csv));
      std::filesystem::rename(csv + ".tmp", csv);
    }
  } catch (const ringdp::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
