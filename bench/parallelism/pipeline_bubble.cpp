// The pipeline bubble, measured: P ranks run P equal stages (each `--layers` Dense layers of
// `--width` x `--width`) of a 1F1B pipeline over a batch, for each micro-batch count of
// `--micro-batches` (interleaved over `--repeats`, so that the load of a shared machine
// affects them alike). Per stage it takes the median over the timed steps of the idle
// fraction (1 - compute / step time, PipelineTimes) and prints it next to the ideal
// (P - 1) / (M + P - 1) of equal stages and free transfers.
//
//   mpirun -np 4 bench-pipeline-bubble --width 512 --batch 256 --micro-batches 1 2 4 8 16

#include <fmt/format.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "ringdp/ringdp.hpp"

namespace {

using namespace ringdp;

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0.0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Measured {
  double step = 0.0;     // this stage's median step time (s)
  double compute = 0.0;  // its median compute time (s)
  double idle = 0.0;     // its median idle fraction
};

Measured run(parallel::PipelineStage<float>& stage, const nn::Matrix<float>& x,
             const nn::Matrix<float>& r, int steps, int warmup) {
  auto loss = [&r](const nn::Matrix<float>& out, parallel::Slice c, nn::Matrix<float>& grad) {
    grad = r.middleCols(static_cast<Eigen::Index>(c.offset), static_cast<Eigen::Index>(c.size));
    nn::LossResult result;
    result.loss_sum = static_cast<double>(out.cwiseProduct(grad).sum());
    result.count = c.size;
    return result;
  };
  std::vector<double> step, compute, idle;
  for (int i = 0; i < warmup + steps; ++i) {
    stage.step(x, static_cast<std::size_t>(x.cols()), loss);
    if (i < warmup) continue;
    step.push_back(stage.times().total);
    compute.push_back(stage.times().compute);
    idle.push_back(stage.times().idle_fraction());
  }
  return {median_of(step), median_of(compute), median_of(idle)};
}

}  // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv, ThreadLevel::Serialized);
  const Communicator world(MPI_COMM_WORLD);
  CLI::App app("The 1F1B pipeline bubble of ringdp's pipeline stages, measured");
  std::size_t width = 512;
  int layers = 1;
  std::size_t batch = 256;
  std::vector<int> micro_batches = {1, 2, 4, 8, 16};
  int steps = 20;
  int warmup = 3;
  int repeats = 3;
  std::string csv;
  app.add_option("--width", width, "width of every Dense layer")->capture_default_str();
  app.add_option("--layers", layers, "Dense layers per stage")->capture_default_str();
  app.add_option("--batch", batch, "samples per step")->capture_default_str();
  app.add_option("--micro-batches", micro_batches, "micro-batch counts")->capture_default_str();
  app.add_option("--steps", steps, "timed steps per run")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str();
  app.add_option("--repeats", repeats, "interleaved repeats")->capture_default_str();
  app.add_option("--csv", csv, "write every (repeat, M, stage) row here");
  CLI11_PARSE(app, argc, argv);

  const int p = world.size();
  const parallel::Grid grid(world, 1, p);
  const std::vector<std::size_t> widths(static_cast<std::size_t>(p * layers) + 1, width);
  const parallel::MlpLayout layout(widths, 1, p);
  auto model = layout.build<float>(grid.tensor(), grid.coordinates().pipeline);
  layout.initialize(model, grid.coordinates().pipeline, 1);
  const auto b = static_cast<Eigen::Index>(batch);
  const nn::Matrix<float> x = nn::Matrix<float>::Random(static_cast<Eigen::Index>(width), b);
  const nn::Matrix<float> r = nn::Matrix<float>::Random(static_cast<Eigen::Index>(width), b) / b;

  std::ofstream out;
  if (world.rank() == 0 && !csv.empty()) {
    out.open(csv);
    out << "repeat,stages,micro_batches,stage,step_ms,compute_ms,idle_fraction,ideal\n";
  }
  // Per M, per stage: the idle fractions of every repeat.
  std::vector<std::vector<std::vector<double>>> idle(
      micro_batches.size(), std::vector<std::vector<double>>(static_cast<std::size_t>(p)));
  std::vector<std::vector<double>> step_ms(micro_batches.size());
  for (int rep = 0; rep < repeats; ++rep) {
    for (std::size_t i = 0; i < micro_batches.size(); ++i) {
      parallel::PipelineStage<float> stage(grid.pipeline(), model, micro_batches[i]);
      const Measured m = run(stage, x, r, steps, warmup);
      std::vector<double> all(3 * static_cast<std::size_t>(p));
      const std::vector<double> mine = {m.step, m.compute, m.idle};
      allgather<double>(world, mine, all);
      const double ideal = parallel::ideal_bubble_fraction(p, micro_batches[i]);
      double slowest = 0.0;
      for (int s = 0; s < p; ++s) {
        const auto at = 3 * static_cast<std::size_t>(s);
        idle[i][static_cast<std::size_t>(s)].push_back(all[at + 2]);
        slowest = std::max(slowest, all[at]);
        if (out.is_open()) {
          out << fmt::format("{},{},{},{},{:.4f},{:.4f},{:.4f},{:.4f}\n", rep, p, micro_batches[i],
                             s, all[at] * 1e3, all[at + 1] * 1e3, all[at + 2], ideal);
        }
      }
      step_ms[i].push_back(slowest * 1e3);
    }
  }
  if (world.rank() != 0) return 0;
  fmt::print("pipeline of {} stages x {} Dense {}x{}, batch {}, {} steps x {} repeats (medians)\n",
             p, layers, width, width, batch, steps, repeats);
  fmt::print("{:>3} {:>9} {:>10} {:>10}   idle per stage\n", "M", "step_ms", "idle_mean", "ideal");
  for (std::size_t i = 0; i < micro_batches.size(); ++i) {
    std::vector<double> per_stage;
    double mean = 0.0;
    for (int s = 0; s < p; ++s) {
      per_stage.push_back(median_of(idle[i][static_cast<std::size_t>(s)]));
      mean += per_stage.back() / p;
    }
    std::string stages;
    for (double v : per_stage) stages += fmt::format(" {:5.1f}%", 100 * v);
    fmt::print("{:>3} {:>9.2f} {:>9.1f}% {:>9.1f}%  {}\n", micro_batches[i], median_of(step_ms[i]),
               100 * mean, 100 * parallel::ideal_bubble_fraction(p, micro_batches[i]), stages);
  }
  return 0;
}
