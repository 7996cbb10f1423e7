// One layout of the data-vs-model parallelism comparison, measured: trains the MLP `--model`
// on an HDF5 dataset (its /train split, held in memory) for `--epochs` epochs with the
// global batch `--batch`, on a grid of data x tensor (`--tp`) x pipeline (`--pp`) ranks,
// and reports per step and per rank what bench/parallelism/README.md compares:
//
// - bytes sent per rank per step, counted (this program defines MPI_Send, MPI_Isend and
//   MPI_Ibcast over PMPI_*) by group -- tensor (activation allreduces), pipeline
//   (activations and their gradients), data (gradient averaging) -- next to the cost model
//   of ringdp/parallel/traffic.hpp;
// - step time, and its parts: compute, tensor allreduces, pipeline waits (bubble and
//   transfers not hidden), gradient averaging (after backward, not overlapped);
// - parameter + optimizer (SGD momentum) bytes per rank;
// - compute imbalance (slowest rank's compute / mean), the pipeline's idle fraction next to
//   (P-1)/(M+P-1);
// - training loss and test accuracy after every epoch (the /test split, one pass).
//
// Rank 0 prints a summary and writes every figure to `--json`.
//
//   mpirun -np 4 bench-parallelism --data synth.h5 --model 64-256-256-10 --tp 2 --json x.json

#include <fmt/format.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "ringdp/ringdp.hpp"

namespace {

using namespace ringdp;
using Clock = std::chrono::steady_clock;

// ---- bytes sent, by group -------------------------------------------------------------
enum Group { kTensor = 0, kPipeline = 1, kData = 2 };
std::atomic<std::int64_t> g_sent[3];
bool g_in_data_phase = false;  // the gradient averaging runs on the data group
MPI_Comm g_tensor = MPI_COMM_NULL;

void count(int n, MPI_Datatype type, MPI_Comm comm) {
  int size = 0;
  PMPI_Type_size(type, &size);
  Group group = kData;
  if (!g_in_data_phase) {
    int same = MPI_UNEQUAL;
    if (g_tensor != MPI_COMM_NULL) PMPI_Comm_compare(comm, g_tensor, &same);
    group = (same == MPI_IDENT || same == MPI_CONGRUENT) ? kTensor : kPipeline;
  }
  g_sent[group] += static_cast<std::int64_t>(n) * size;
}

}  // namespace

extern "C" int MPI_Send(const void* buf, int n, MPI_Datatype type, int dest, int tag,
                        MPI_Comm comm) {
  count(n, type, comm);
  return PMPI_Send(buf, n, type, dest, tag, comm);
}

extern "C" int MPI_Isend(const void* buf, int n, MPI_Datatype type, int dest, int tag,
                         MPI_Comm comm, MPI_Request* request) {
  count(n, type, comm);
  return PMPI_Isend(buf, n, type, dest, tag, comm, request);
}

// The parameter server's result goes out by MPI_Ibcast (MPI's tree): (n - 1) x N bytes in
// all, counted at the root, as the cost model counts them.
extern "C" int MPI_Ibcast(void* buf, int n, MPI_Datatype type, int root, MPI_Comm comm,
                          MPI_Request* request) {
  int rank = 0, size = 0;
  PMPI_Comm_rank(comm, &rank);
  PMPI_Comm_size(comm, &size);
  if (rank == root) count(n * (size - 1), type, comm);
  return PMPI_Ibcast(buf, n, type, root, comm, request);
}

namespace {

struct Options {
  std::string data, model = "64-256-256-10", json, name;
  int tp = 1, pp = 1, micro_batches = 4, epochs = 2, max_steps = 0, warmup = 3;
  std::size_t batch = 64;
  std::string data_algorithm = "ring", tensor_algorithm = "auto";
  double lr = 0.05, momentum = 0.9;
  std::uint64_t seed = 1;
};

// One step of this rank, in seconds and bytes.
struct StepRecord {
  double total = 0, tensor_comm = 0, pipeline_wait = 0, data_comm = 0, compute = 0, idle = 0;
  double bytes[3] = {0, 0, 0};
  double loss_sum = 0, count = 0;  // on the rank that reports its replica's loss
};

struct Data {
  Eigen::MatrixXf train_x, test_x;
  std::vector<std::int32_t> train_y, test_y;
};

void read_split(const Communicator& comm, const std::string& path, data::DatasetNames names,
                Eigen::MatrixXf& x, std::vector<std::int32_t>& y) {
  data::DatasetOptions options;
  options.names = names;
  const data::H5Dataset ds(comm, path, options);
  if (ds.element_type() != data::ElementType::Float32) {
    throw InvalidArgument(fmt::format("{}: the benchmark reads float32 datasets", path));
  }
  x.resize(static_cast<Eigen::Index>(ds.features()), static_cast<Eigen::Index>(ds.size()));
  y.resize(ds.size());
  ds.read_rows(
      0, ds.size(),
      std::as_writable_bytes(std::span<float>(x.data(), static_cast<std::size_t>(x.size()))), y);
}

double tensor_comm_seconds(nn::Sequential<float>& model) {
  double s = 0;
  for (std::size_t i = 0; i < model.layer_count(); ++i) {
    if (auto* l = dynamic_cast<parallel::SplitDense<float>*>(&model.layer(i))) {
      s += l->communication_seconds();
    }
  }
  return s;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Test accuracy and loss of the model as it stands: each replica evaluates its share of
// the test split; the sums come from one rank per replica.
std::pair<double, double> evaluate(parallel::ParallelMlp<float>& mlp, const Data& d,
                                   std::size_t batch) {
  const parallel::Grid& grid = mlp.grid();
  train::InMemoryOptions o;
  o.batch_size = batch;
  o.evaluation = true;
  train::InMemorySource source(d.test_x, d.test_y, grid.coordinates().data, grid.data_size(), o);
  source.start_epoch(0);
  data::Batch b;
  std::vector<double> sums = {0, 0, 0};  // loss, correct, count
  while (source.next(b)) {
    if (b.real == 0) continue;
    const nn::LossResult r = mlp.evaluate_batch(b.x, b.labels, b.real);
    if (!mlp.reports_loss()) continue;
    sums[0] += r.loss_sum;
    sums[1] += static_cast<double>(r.correct);
    sums[2] += static_cast<double>(r.count);
  }
  allreduce<double>(grid.world(), sums, ReduceOp::Sum);
  return {sums[1] / sums[2], sums[0] / sums[2]};
}

StepRecord step(parallel::ParallelMlp<float>& mlp, nn::Optimizer<float>& opt, const data::Batch& b,
                Algorithm data_algorithm, double lr) {
  StepRecord r;
  std::int64_t before[3];
  for (int g = 0; g < 3; ++g) before[g] = g_sent[g].load();
  const double comm0 = tensor_comm_seconds(mlp.model());
  const auto t0 = Clock::now();
  const nn::LossResult loss = mlp.train_batch(b.x, b.labels, b.real, 1.0);
  if (mlp.reports_loss()) {
    r.loss_sum = loss.loss_sum;
    r.count = static_cast<double>(loss.count);
  }
  const auto t1 = Clock::now();
  const Communicator& data = mlp.grid().data();
  auto grads = mlp.model().gradients();
  if (data.size() > 1) {
    g_in_data_phase = true;
    allreduce<float>(data, grads, ReduceOp::Average, data_algorithm);
    g_in_data_phase = false;
  }
  const auto t2 = Clock::now();
  opt.step(mlp.model().parameters(), grads, lr);
  const auto t3 = Clock::now();
  r.total = std::chrono::duration<double>(t3 - t0).count();
  r.data_comm = std::chrono::duration<double>(t2 - t1).count();
  r.tensor_comm = tensor_comm_seconds(mlp.model()) - comm0;
  double forward_backward = std::chrono::duration<double>(t1 - t0).count();
  if (const auto* stage = mlp.pipeline()) {
    r.pipeline_wait = stage->times().total - stage->times().compute;
    r.idle = stage->times().idle_fraction();
    forward_backward = stage->times().compute;
  }
  r.compute = forward_backward - r.tensor_comm + std::chrono::duration<double>(t3 - t2).count();
  for (int g = 0; g < 3; ++g) r.bytes[g] = static_cast<double>(g_sent[g].load() - before[g]);
  return r;
}

}  // namespace

namespace {

// The figures of one rank, gathered on every rank: one row per rank.
struct RankSummary {
  double step = 0, compute = 0, tensor_comm = 0, pipeline_wait = 0, data_comm = 0, idle = 0;
  double bytes[3] = {0, 0, 0};
  double model_bytes[3] = {0, 0, 0};  // the cost model's tensor, pipeline, data
  double memory = 0;                  // parameter + optimizer bytes
  static constexpr std::size_t kFields = 13;
  [[nodiscard]] std::vector<double> pack() const {
    return {step,     compute,  tensor_comm,    pipeline_wait,  data_comm,      idle,  bytes[0],
            bytes[1], bytes[2], model_bytes[0], model_bytes[1], model_bytes[2], memory};
  }
  static RankSummary unpack(const double* v) {
    RankSummary s;
    s.step = v[0], s.compute = v[1], s.tensor_comm = v[2], s.pipeline_wait = v[3];
    s.data_comm = v[4], s.idle = v[5];
    for (int g = 0; g < 3; ++g) s.bytes[g] = v[6 + g], s.model_bytes[g] = v[9 + g];
    s.memory = v[12];
    return s;
  }
};

RankSummary summarise(const std::vector<StepRecord>& steps, int warmup) {
  RankSummary s;
  std::vector<double> col;
  auto median = [&](auto field) {
    col.clear();
    for (std::size_t i = static_cast<std::size_t>(warmup); i < steps.size(); ++i) {
      col.push_back(field(steps[i]));
    }
    return median_of(col);
  };
  s.step = median([](const StepRecord& r) { return r.total; });
  s.compute = median([](const StepRecord& r) { return r.compute; });
  s.tensor_comm = median([](const StepRecord& r) { return r.tensor_comm; });
  s.pipeline_wait = median([](const StepRecord& r) { return r.pipeline_wait; });
  s.data_comm = median([](const StepRecord& r) { return r.data_comm; });
  s.idle = median([](const StepRecord& r) { return r.idle; });
  for (int g = 0; g < 3; ++g) {
    double sum = 0;  // bytes are the same every step: the mean over all of them
    for (const StepRecord& r : steps) sum += r.bytes[g];
    s.bytes[g] = steps.empty() ? 0 : sum / static_cast<double>(steps.size());
  }
  return s;
}

std::string json_array(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{:.9g}", i ? ", " : "", v[i]);
  return s + "]";
}

void write_json(const Options& o, const parallel::ParallelMlp<float>& mlp,
                const std::vector<RankSummary>& ranks, const std::vector<double>& train_loss,
                const std::vector<double>& accuracy, const std::vector<double>& test_loss,
                std::size_t steps, double seconds) {
  const parallel::Grid& g = mlp.grid();
  std::string rows;
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    rows += fmt::format("{}    {}", r ? ",\n" : "", json_array(ranks[r].pack()));
  }
  std::string out = fmt::format(
      "{{\n  \"name\": \"{}\", \"model\": \"{}\", \"ranks\": {}, \"data\": {}, \"tensor\": {}, "
      "\"pipeline\": {}, \"micro_batches\": {}, \"batch\": {}, \"epochs\": {}, \"steps\": {},\n"
      "  \"data_algorithm\": \"{}\", \"tensor_algorithm\": \"{}\", \"lr\": {}, \"momentum\": {},\n"
      "  \"seconds\": {:.4f}, \"full_parameters\": {}, \"ideal_bubble\": {:.6f},\n"
      "  \"train_loss\": {}, \"test_accuracy\": {}, \"test_loss\": {},\n"
      "  \"rank_fields\": [\"step_s\", \"compute_s\", \"tensor_comm_s\", \"pipeline_wait_s\", "
      "\"data_comm_s\", \"idle_fraction\", \"tensor_bytes\", \"pipeline_bytes\", \"data_bytes\", "
      "\"tensor_bytes_model\", \"pipeline_bytes_model\", \"data_bytes_model\", \"memory_bytes\"],\n"
      "  \"per_rank\": [\n{}\n  ]\n}}\n",
      o.name, o.model, g.world().size(), g.data_size(), g.tensor_size(), g.pipeline_size(),
      o.micro_batches, o.batch, o.epochs, steps, o.data_algorithm, o.tensor_algorithm, o.lr,
      o.momentum, seconds, mlp.layout().full_parameter_count(),
      parallel::ideal_bubble_fraction(g.pipeline_size(), o.micro_batches), json_array(train_loss),
      json_array(accuracy), json_array(test_loss), rows);
  std::ofstream(o.json) << out;
}

// This rank's expected bytes per step (tensor, pipeline, data) and its memory.
void model_figures(const Options& o, const parallel::ParallelMlp<float>& mlp, Algorithm data_alg,
                   Algorithm tensor_alg, RankSummary& s) {
  const parallel::Grid& g = mlp.grid();
  const std::size_t per_replica = o.batch / static_cast<std::size_t>(g.data_size());
  const parallel::StepTraffic t = parallel::step_traffic(mlp.layout(), g.coordinates().pipeline,
                                                         per_replica, sizeof(float), tensor_alg,
                                                         &g.tensor().node_layout());
  s.model_bytes[kTensor] = t.tensor;
  s.model_bytes[kPipeline] = t.pipeline;
  const std::size_t grad_bytes = mlp.model().parameter_count() * sizeof(float);
  const Algorithm resolved =
      resolve_algorithm(data_alg, grad_bytes, g.data_size(), g.data().node_layout());
  // The parameter server's root sends the broadcast: the busiest rank is data rank 0.
  const parallel::RankBytes d = parallel::allreduce_bytes_sent(resolved, grad_bytes, g.data_size());
  s.model_bytes[kData] = resolved == Algorithm::ParameterServer && g.coordinates().data == 0
                             ? d.max
                             : (resolved == Algorithm::ParameterServer
                                    ? (d.mean * g.data_size() - d.max) / (g.data_size() - 1)
                                    : d.mean);
  s.memory = static_cast<double>(mlp.model().parameter_count() * sizeof(float)) *
             (o.momentum > 0 ? 2.0 : 1.0);
}

std::vector<RankSummary> gather(const Communicator& world, const RankSummary& mine) {
  std::vector<double> all(RankSummary::kFields * static_cast<std::size_t>(world.size()));
  allgather<double>(world, mine.pack(), all);
  std::vector<RankSummary> out;
  for (int r = 0; r < world.size(); ++r) {
    out.push_back(RankSummary::unpack(all.data() + RankSummary::kFields * r));
  }
  return out;
}

void print_summary(const Options& o, const parallel::ParallelMlp<float>& mlp,
                   const std::vector<RankSummary>& ranks, double accuracy) {
  double step = 0, compute_max = 0, compute_mean = 0, sent = 0, modelled = 0, memory = 0;
  for (const RankSummary& r : ranks) {
    step = std::max(step, r.step);
    compute_max = std::max(compute_max, r.compute);
    compute_mean += r.compute / static_cast<double>(ranks.size());
    memory = std::max(memory, r.memory);
    for (int g = 0; g < 3; ++g) {
      sent += r.bytes[g] / static_cast<double>(ranks.size());
      modelled += r.model_bytes[g] / static_cast<double>(ranks.size());
    }
  }
  fmt::print(
      "{} [{}]: step {:.2f} ms, compute max/mean {:.2f}, sent {:.0f} B/rank/step (model {:.0f}), "
      "params+opt {:.0f} B/rank, test accuracy {:.4f}\n",
      o.name, mlp.grid().describe(), step * 1e3, compute_max / compute_mean, sent, modelled, memory,
      accuracy);
}

}  // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv, ThreadLevel::Serialized);
  const Communicator world(MPI_COMM_WORLD);
  CLI::App app("One layout of the data-vs-model parallelism comparison, measured");
  Options o;
  app.add_option("--data", o.data, "HDF5 dataset with /train and /test splits")->required();
  app.add_option("--model", o.model, "MLP spec")->capture_default_str();
  app.add_option("--tp", o.tp, "tensor-parallel ranks T")->capture_default_str();
  app.add_option("--pp", o.pp, "pipeline stages P")->capture_default_str();
  app.add_option("--micro-batches", o.micro_batches, "micro-batches M")->capture_default_str();
  app.add_option("--batch", o.batch, "global batch per step")->capture_default_str();
  app.add_option("--epochs", o.epochs, "epochs")->capture_default_str();
  app.add_option("--max-steps", o.max_steps, "stop after this many steps (0: all)");
  app.add_option("--warmup", o.warmup, "steps left out of the medians")->capture_default_str();
  app.add_option("--data-algorithm", o.data_algorithm, "gradient averaging: ring, ps, rd, auto")
      ->capture_default_str();
  app.add_option("--tensor-algorithm", o.tensor_algorithm, "activation allreduces")
      ->capture_default_str();
  app.add_option("--lr", o.lr, "learning rate")->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--seed", o.seed, "initialisation and shuffling seed")->capture_default_str();
  app.add_option("--json", o.json, "write the figures here (rank 0)");
  app.add_option("--name", o.name, "the layout's name in the output")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const Algorithm data_alg = parse_algorithm(o.data_algorithm);
  const Algorithm tensor_alg = parse_algorithm(o.tensor_algorithm);
  Data d;
  read_split(world, o.data, data::DatasetNames::train(), d.train_x, d.train_y);
  read_split(world, o.data, data::DatasetNames::test(), d.test_x, d.test_y);
  const parallel::Grid grid(world, o.tp, o.pp);
  if (o.batch % static_cast<std::size_t>(grid.data_size()) != 0 ||
      d.train_y.size() % o.batch != 0) {
    throw InvalidArgument(fmt::format("batch {} must divide {} samples and be divided by {}",
                                      o.batch, d.train_y.size(), grid.data_size()));
  }
  g_tensor = grid.tensor().native();
  parallel::ParallelMlp<float> mlp(grid, o.model, o.micro_batches, tensor_alg);
  mlp.initialize(o.seed);
  nn::SgdOptions so;
  so.momentum = o.momentum;
  nn::Sgd<float> opt(mlp.model().parameter_count(), so);

  train::InMemoryOptions io;
  io.batch_size = o.batch / static_cast<std::size_t>(grid.data_size());
  io.seed = o.seed;
  train::InMemorySource source(d.train_x, d.train_y, grid.coordinates().data, grid.data_size(), io);
  std::vector<StepRecord> steps;
  std::vector<double> train_loss, accuracy, test_loss;
  const auto start = Clock::now();
  for (int e = 0; e < o.epochs; ++e) {
    source.start_epoch(static_cast<std::uint64_t>(e));
    data::Batch b;
    std::vector<double> epoch_loss = {0, 0};  // sum, count over the epoch's steps
    while ((o.max_steps == 0 || static_cast<int>(steps.size()) < o.max_steps) && source.next(b)) {
      steps.push_back(step(mlp, opt, b, data_alg, o.lr));
      epoch_loss[0] += steps.back().loss_sum;
      epoch_loss[1] += steps.back().count;
    }
    allreduce<double>(world, epoch_loss, ReduceOp::Sum);
    train_loss.push_back(epoch_loss[1] > 0 ? epoch_loss[0] / epoch_loss[1] : 0.0);
    const auto [acc, loss] = evaluate(mlp, d, io.batch_size);
    accuracy.push_back(acc);
    test_loss.push_back(loss);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  RankSummary mine = summarise(steps, o.warmup);
  model_figures(o, mlp, data_alg, tensor_alg, mine);
  const std::vector<RankSummary> ranks = gather(world, mine);
  if (world.rank() == 0) {
    print_summary(o, mlp, ranks, accuracy.empty() ? 0.0 : accuracy.back());
    if (!o.json.empty()) {
      write_json(o, mlp, ranks, train_loss, accuracy, test_loss, steps.size(), seconds);
    }
  }
  return 0;
}
