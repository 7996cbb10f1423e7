// Training throughput of ringdp's Trainer on synthetic in-memory data.
//
//   mpirun -np 2 bench-train-throughput --model 784-512-256-10 --batch 64 --steps 200
//
// For every repeat, every bucket size and overlap on/off (interleaved, so that the load of
// a shared machine affects all variants alike), it trains --steps timed steps after
// --warmup untimed ones and reports on rank 0: global samples/s (global samples / the
// slowest rank's wall time) and the per-step medians of rank 0's time breakdown. A CSV
// (--csv) holds every run; the summary gives, per variant, the median over repeats.

#include <fmt/format.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/ringdp.hpp"

namespace {

using namespace ringdp;

// A variant of the step: the trainer on the world communicator with the gradient
// reduction overlapped with backward or after it; "solo": each rank trains its own
// replica on MPI_COMM_SELF, with no communication at all, which measures what the machine
// gives k independent processes (shared caches, memory bandwidth, clock), the ceiling of
// any data-parallel scaling on it; "single": rank 0 alone while the others sleep, the
// 1-rank baseline.
struct Variant {
  std::string name;
  bool overlap = true;
  bool solo = false;
  bool single = false;
  bool lockstep = false;  // solo, but the ranks meet at a barrier after every step
  bool pace = true;       // the progress thread polls gently while backward runs
};

// Waits for every rank of `comm` without spinning on a core: a rank that polls MPI in a
// busy loop would steal the core of the rank being measured.
void sleep_until_all_arrive(const Communicator& comm) {
  MPI_Request request = MPI_REQUEST_NULL;
  RINGDP_MPI_CHECK(MPI_Ibarrier(comm.native(), &request));
  int done = 0;
  while (true) {
    RINGDP_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

struct Result {
  int repeat = 0;
  std::size_t bucket_bytes = 0;
  std::string variant;
  double samples_per_s = 0.0;
  train::StepTimes median;  // rank 0's per-step medians (seconds)
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0
                   : (v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

}  // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv, ThreadLevel::Serialized);
  const Communicator world(MPI_COMM_WORLD);

  CLI::App app("Training throughput of the ringdp data-parallel trainer");
  std::string spec = "784-512-256-10";
  std::size_t batch = 64;
  std::size_t steps = 200;
  std::size_t warmup = 20;
  int repeats = 3;
  std::vector<std::size_t> bucket_sizes;
  std::string overlap_modes = "both";
  std::string algorithm_name = "auto";
  std::string csv;
  bool solo = false;
  bool spin = false;
  std::string timeline;
  int threads = 1;
  int spin_us = -1;
  app.add_option("--model", spec, "MLP spec")->capture_default_str();
  app.add_option("--threads", threads, "compute threads per rank (a ringdp::nn::ThreadPool)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--spin-us", spin_us,
                 "how long the compute threads spin before they block (us); -1: the trainer's "
                 "choice (TrainerOptions::spin_us)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1000000));
  app.add_option("--batch", batch, "samples per rank per step")->capture_default_str();
  app.add_option("--steps", steps, "timed steps per run")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps before each run")->capture_default_str();
  app.add_option("--repeats", repeats, "runs of every variant, interleaved")->capture_default_str();
  app.add_option("--bucket-bytes", bucket_sizes,
                 "bucket sizes to compare (default: the library default)");
  app.add_option("--overlap", overlap_modes, "on, off or both")->capture_default_str();
  app.add_option("--algo", algorithm_name, "allreduce algorithm")->capture_default_str();
  app.add_option("--csv", csv, "write every run to this CSV file");
  app.add_flag("--solo", solo,
               "also run every rank alone (MPI_COMM_SELF, no communication; the machine's "
               "ceiling for the scaling) and rank 0 alone (the 1-rank baseline)");
  app.add_flag("--spin", spin,
               "also run the overlap with a progress thread that spins while backward runs "
               "(variant ovl-spin; the default paces its polls)");
  app.add_option("--timeline", timeline,
                 "write the last repeat's Chrome trace of each communicating variant to "
                 "FILE.<variant>.json");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return world.rank() == 0 ? app.exit(e) : 1;
  }
  if (bucket_sizes.empty()) bucket_sizes.push_back(default_bucket_bytes());
  std::vector<Variant> variants;
  if (overlap_modes != "off") {
    variants.push_back({"overlap", true, false});
    if (spin) variants.push_back({.name = "ovl-spin", .overlap = true, .pace = false});
  }
  if (overlap_modes != "on") variants.push_back({"after", false, false});
  if (solo) {
    variants.push_back({"solo", true, true, false});
    if (world.size() > 1) variants.push_back({"lockstep", true, true, false, true});
    if (world.size() > 1) variants.push_back({"single", true, false, true});
  }
  const Communicator self(MPI_COMM_SELF);
  const Algorithm algorithm = parse_algorithm(algorithm_name);

  // Synthetic data: uniform features in [0, 1), labels from a fixed random linear teacher;
  // one epoch = the steps of one run, so no epoch boundary falls inside the timed steps.
  auto model = nn::Sequential<float>::from_spec(spec);
  const auto features = static_cast<Eigen::Index>(model.input_size());
  const auto classes = static_cast<Eigen::Index>(model.output_size());
  const std::size_t samples = batch * static_cast<std::size_t>(world.size()) * (steps + warmup);
  Eigen::MatrixXf x =
      (Eigen::MatrixXf::Random(features, static_cast<Eigen::Index>(samples)).array() + 1.0f) / 2.0f;
  const Eigen::MatrixXf teacher = Eigen::MatrixXf::Random(classes, features);
  std::vector<std::int32_t> labels(samples);
  for (std::size_t j = 0; j < samples; ++j) {
    Eigen::Index best = 0;
    (teacher * x.col(static_cast<Eigen::Index>(j))).maxCoeff(&best);
    labels[j] = static_cast<std::int32_t>(best);
  }
  train::InMemorySource source(std::move(x), std::move(labels), world.rank(), world.size(),
                               {.batch_size = batch, .seed = 1});

  double load[3] = {0, 0, 0};
  if (world.rank() == 0) {
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (std::fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
      std::fclose(f);
    }
    fmt::print(
        "# ringdp {} train_throughput: model {} ({} parameters, {:.2f} MB), batch {} per rank "
        "(global {}), {} ranks, {} compute thread(s) per rank on {} CPU(s), algorithm {}\n# GEMM "
        "{}\n",
        RINGDP_VERSION_STRING, spec, model.parameter_count(), model.parameter_count() * 4 / 1e6,
        batch, batch * world.size(), world.size(), threads, nn::affinity_cpu_count(),
        algorithm_name, nn::gemm_library());
    fmt::print(
        "# {} timed steps after {} warm-up steps, {} repeats; load average at start {:.2f} {:.2f} "
        "{:.2f}\n",
        steps, warmup, repeats, load[0], load[1], load[2]);
    fmt::print("{:>6} {:>8} {:>7} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "repeat", "bucket",
               "variant", "samples/s", "step_ms", "data_ms", "fwd_ms", "bwd_ms", "comm_ms",
               "opt_ms");
  }

  std::vector<Result> results;
  for (int repeat = 0; repeat < repeats; ++repeat) {
    for (const std::size_t bucket : bucket_sizes) {
      for (const Variant& variant : variants) {
        // single: rank 0 trains alone while the other ranks sleep (not spin) until it is
        // done; the 1-rank baseline, measured in the same interleaved run.
        const bool trains = !variant.single || world.rank() == 0;
        const Communicator& comm = (variant.solo || variant.single) ? self : world;
        double seconds = 0.0;
        train::StepTimes medians;
        if (trains) {
          model.initialize(42);
          nn::Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9});
          train::Trainer trainer(comm, model, sgd,
                                 {.bucket_bytes = bucket,
                                  .algorithm = algorithm,
                                  .overlap = variant.overlap,
                                  .pace_polls = variant.pace,
                                  .schedule = {.base_lr = 0.01},
                                  .record_timeline = !timeline.empty() && &comm == &world &&
                                                     repeat == repeats - 1,
                                  // The Trainer runs the compute threads and hands them to
                                  // the model and the optimizer.
                                  .threads = threads,
                                  .spin_us = spin_us >= 0 ? std::optional<int>(spin_us)
                                                          : std::nullopt});
          // Every batch is full (the sample count is a multiple of the global batch), so
          // the global count is known in advance, as train_epoch() would know it.
          const auto step_ranks = static_cast<std::size_t>(comm.size());
          source.start_epoch(static_cast<std::uint64_t>(repeat));
          train::Batch b;
          const auto spe = static_cast<std::int64_t>(source.steps_per_epoch());
          for (std::size_t s = 0; s < warmup; ++s) {
            source.next(b);
            b.global_real = b.real * step_ranks;
            trainer.step(b, spe);
          }
          trainer.clear_times();
          if (!variant.single) world.barrier();
          const auto start = std::chrono::steady_clock::now();
          for (std::size_t s = 0; s < steps; ++s) {
            source.next(b);
            b.global_real = b.real * step_ranks;
            trainer.step(b, spe);
            if (variant.lockstep) world.barrier();
          }
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          medians = trainer.times().medians();
          if (trainer.options().record_timeline) {
            train::write_chrome_trace(world, timeline + "." + variant.name + ".json",
                                      trainer.timeline());
          }
        }
        if (variant.single) sleep_until_all_arrive(world);
        RINGDP_MPI_CHECK(
            MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, world.native()));
        const std::size_t trained_ranks =
            variant.single ? 1 : static_cast<std::size_t>(world.size());
        Result r{repeat, bucket, variant.name,
                 static_cast<double>(steps * batch * trained_ranks) / seconds, medians};
        results.push_back(r);
        if (world.rank() == 0) {
          fmt::print(
              "{:>6} {:>8} {:>7} {:>10.0f} {:>9.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f}\n",
              repeat, bucket, r.variant, r.samples_per_s, r.median.total * 1e3,
              r.median.data * 1e3, r.median.forward * 1e3, r.median.backward * 1e3,
              r.median.exposed_comm * 1e3, r.median.optimizer * 1e3);
          std::fflush(stdout);
        }
      }
    }
  }

  if (world.rank() == 0) {
    // vs_single: per repeat, the variant's rate over the single-rank rate of the same
    // repeat (measured minutes apart at most), then the median: a speed-up that the
    // machine's drifting load affects much less than either rate alone.
    const bool have_single = std::any_of(variants.begin(), variants.end(),
                                         [](const Variant& v) { return v.single; });
    fmt::print("# summary: median over repeats\n{:>8} {:>7} {:>10} {:>9} {:>8} {:>10}\n", "bucket",
               "variant", "samples/s", "step_ms", "comm_ms", "vs_single");
    for (const std::size_t bucket : bucket_sizes) {
      for (const Variant& variant : variants) {
        std::vector<double> rate, step, comm, speedup;
        for (const auto& r : results) {
          if (r.bucket_bytes != bucket || r.variant != variant.name) continue;
          rate.push_back(r.samples_per_s);
          step.push_back(r.median.total * 1e3);
          comm.push_back(r.median.exposed_comm * 1e3);
          for (const auto& base : results) {
            if (base.bucket_bytes == bucket && base.repeat == r.repeat && base.variant == "single") {
              speedup.push_back(r.samples_per_s / base.samples_per_s);
            }
          }
        }
        fmt::print("{:>8} {:>7} {:>10.0f} {:>9.3f} {:>8.3f} {:>10}\n", bucket, variant.name,
                   median_of(rate), median_of(step), median_of(comm),
                   have_single ? fmt::format("{:.2f}x", median_of(speedup)) : "-");
      }
    }
    if (!csv.empty()) {
      std::ofstream out(csv);
      out << "ranks,threads,batch,model,repeat,bucket_bytes,variant,samples_per_s,step_ms,data_ms,"
             "forward_ms,backward_ms,exposed_comm_ms,optimizer_ms\n";
      for (const auto& r : results) {
        out << fmt::format("{},{},{},{},{},{},{},{:.1f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f}\n",
                           world.size(), threads, batch, spec, r.repeat, r.bucket_bytes, r.variant,
                           r.samples_per_s, r.median.total * 1e3, r.median.data * 1e3,
                           r.median.forward * 1e3, r.median.backward * 1e3,
                           r.median.exposed_comm * 1e3, r.median.optimizer * 1e3);
      }
    }
  }
  return 0;
}
