#include "run_info.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <map>

#include "console.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/version.hpp"

namespace ringdp_train {
namespace {

std::vector<std::string> gather_hosts(const ringdp::Communicator& comm) {
  std::vector<char> mine(MPI_MAX_PROCESSOR_NAME, '\0');
  int length = 0;
  RINGDP_MPI_CHECK(MPI_Get_processor_name(mine.data(), &length));
  std::vector<char> all(mine.size() * static_cast<std::size_t>(comm.size()));
  RINGDP_MPI_CHECK(MPI_Allgather(mine.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(),
                                 MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm.native()));
  std::vector<std::string> hosts;
  for (int r = 0; r < comm.size(); ++r) {
    std::string name(all.data() + static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME);
    if (std::find(hosts.begin(), hosts.end(), name) == hosts.end()) hosts.push_back(name);
  }
  return hosts;
}

std::string percent(double part, double whole) {
  return whole > 0 ? fmt::format("{:.0f}%", 100.0 * part / whole) : "-";
}

}  // namespace

RunInfo describe_run(const ringdp::Communicator& world, const Options& o,
                     const ringdp::data::ShardedLoader& train_loader,
                     const ringdp::data::ShardedLoader* test_loader, std::size_t parameters,
                     const ringdp::train::Trainer& trainer) {
  // The data ranks: one per model replica (every rank without --tp/--pp).
  const ringdp::Communicator& comm = trainer.communicator();
  RunInfo info;
  info.ranks = world.size();
  info.hosts = gather_hosts(world);
  for (const std::string& h : info.hosts)
    info.hosts_text += (info.hosts_text.empty() ? "" : ",") + h;
  const auto& ds = train_loader.dataset();
  info.train_samples = ds.size();
  info.test_samples = test_loader != nullptr ? test_loader->dataset().size() : 0;
  info.features = ds.features();
  info.classes = train_loader.classes();
  info.element_type = ringdp::data::to_string(ds.element_type());
  info.sampling = ringdp::data::to_string(train_loader.sampler().mode());
  info.parameters = parameters;
  info.steps_per_epoch = static_cast<std::int64_t>(train_loader.steps_per_epoch());
  info.global_batch = train_loader.batch_size() * static_cast<std::size_t>(comm.size());

  // Real samples this rank trains on per epoch (the logical ranks it plays), gathered.
  std::int64_t mine = 0;
  for (int r : train_loader.logical_ranks()) {
    mine += static_cast<std::int64_t>(train_loader.sampler().epoch(r, 0).real);
  }
  info.shard_samples.resize(static_cast<std::size_t>(comm.size()));
  ringdp::allgather<std::int64_t>(comm, std::span<const std::int64_t>(&mine, 1),
                                  info.shard_samples);

  // What each reduction of a step will run (Auto resolves per size, like the reducer).
  std::map<std::string, std::pair<int, std::size_t>> by_algorithm;
  std::size_t smallest = SIZE_MAX;
  std::size_t largest = 0;
  for (const ringdp::ReductionUnit& unit : trainer.reducer().units()) {
    const ringdp::Algorithm a =
        ringdp::resolve_algorithm(trainer.options().algorithm, unit.bytes, comm.size(),
                                  comm.node_layout());
    auto& entry = by_algorithm[ringdp::to_string(a)];
    ++entry.first;
    entry.second += unit.bytes;
    smallest = std::min(smallest, unit.bytes);
    largest = std::max(largest, unit.bytes);
  }
  std::string text;
  for (const auto& [name, entry] : by_algorithm) {
    text += fmt::format("{}{} x{}", text.empty() ? "" : ", ", name, entry.first);
  }
  if (comm.size() == 1) {
    // One replica (one rank, or one split replica): the reducer has nobody to average with.
    info.algorithm_text = fmt::format("{} -> none (one replica: nothing to average)", o.algo);
    return info;
  }
  info.algorithm_text =
      fmt::format("{} -> {} ({} reductions per step, {} to {}; {} buckets)", o.algo, text,
                  trainer.reducer().units().size(), format_bytes(static_cast<double>(smallest)),
                  format_bytes(static_cast<double>(largest)), trainer.reducer().size());
  return info;
}

std::vector<std::string> header_lines(const RunInfo& info, const Options& o) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("ringdp-train {} (git {})", RINGDP_VERSION_STRING, RINGDP_GIT_HASH));
  lines.push_back(fmt::format("  ranks       {} on {} host{} ({})", info.ranks, info.hosts.size(),
                              info.hosts.size() == 1 ? "" : "s", info.hosts_text));
  lines.push_back(
      fmt::format("  data        {}{}", o.data, o.io == "mpiio" ? " (read through MPI-IO)" : ""));
  lines.push_back(
      fmt::format("              {} train / {} test samples, {} features ({}), {} classes",
                  format_count(static_cast<std::int64_t>(info.train_samples)),
                  format_count(static_cast<std::int64_t>(info.test_samples)), info.features,
                  info.element_type, info.classes));
  // Data ranks: every rank, or with --tp/--pp one per model replica.
  const char* unit = info.ranks == static_cast<int>(info.shard_samples.size()) ? "rank" : "replica";
  std::string shards;
  const std::size_t shown = std::min<std::size_t>(info.shard_samples.size(), 8);
  for (std::size_t r = 0; r < shown; ++r) {
    shards += fmt::format("{}{}", r ? " / " : "", format_count(info.shard_samples[r]));
  }
  if (shown < info.shard_samples.size()) shards += " / ...";
  lines.push_back(fmt::format("  sampling    {} ({} samples per epoch on {} 0..{}), seed {}",
                              info.sampling, shards, unit, info.shard_samples.size() - 1, o.seed));
  lines.push_back(fmt::format("  model       MLP {}: {} parameters, {} float32", o.model,
                              format_count(static_cast<std::int64_t>(info.parameters)),
                              format_bytes(4.0 * static_cast<double>(info.parameters))));
  lines.push_back(fmt::format("  batch       {} per {}, {} global; {} steps per epoch, {} epochs",
                              o.batch, unit, info.global_batch, info.steps_per_epoch, o.epochs));
  std::string optimizer = o.optimizer == "sgd"
                              ? fmt::format("sgd lr {} momentum {}{}", o.lr, o.momentum,
                                            o.nesterov ? " (nesterov)" : "")
                              : fmt::format("adam lr {}", o.lr);
  if (o.weight_decay > 0) optimizer += fmt::format(" weight decay {}", o.weight_decay);
  std::string schedule = o.schedule;
  if (o.schedule == "cosine") {
    schedule +=
        fmt::format(" over {} epochs", o.schedule_epochs > 0 ? o.schedule_epochs : o.epochs);
  } else if (o.schedule == "step") {
    schedule += fmt::format(" x{} every {} epochs", o.gamma,
                            o.schedule_epochs > 0 ? o.schedule_epochs : 30.0);
  }
  if (o.scale_lr) schedule += fmt::format(", scaled x{} ranks", info.ranks);
  if (o.warmup_epochs > 0) schedule += fmt::format(", warm-up {} epochs", o.warmup_epochs);
  lines.push_back(fmt::format("  optimizer   {}; schedule {}", optimizer, schedule));
  lines.push_back(fmt::format("  allreduce   {}", info.algorithm_text));
  if (!o.checkpoint_dir.empty()) {
    lines.push_back(fmt::format("  checkpoints {} every {}, keep {}", o.checkpoint_dir,
                                o.checkpoint_every_steps > 0
                                    ? fmt::format("{} steps", o.checkpoint_every_steps)
                                    : fmt::format("{} epoch{}", o.checkpoint_every_epochs,
                                                  o.checkpoint_every_epochs == 1 ? "" : "s"),
                                o.keep));
  }
  return lines;
}

std::vector<std::string> resume_lines(const ringdp::train::Resumed& resumed,
                                      const ringdp::train::TrainPosition& p) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("resumed    from {} (epoch {}, step {} of the epoch, global step {})",
                              resumed.path, p.epoch, p.step_in_epoch, p.global_step));
  for (const std::string& d : resumed.differences) {
    lines.push_back(fmt::format(
        "warning    {} differs: the run will not continue the checkpoint's run bit for bit", d));
  }
  return lines;
}

std::vector<std::string> summary_lines(const Summary& s, const RunInfo& info, const Options& o) {
  std::vector<std::string> lines;
  const double sps = s.train_seconds > 0 ? static_cast<double>(s.samples) / s.train_seconds : 0.0;
  lines.push_back(
      fmt::format("done: {} steps, {} samples in {} of training ({:.0f} samples/s); "
                  "wall time {}",
                  format_count(s.steps), format_count(s.samples), format_seconds(s.train_seconds),
                  sps, format_seconds(s.wall_seconds)));
  if (s.skipped_steps > 0 || o.skip_nonfinite) {
    lines.push_back(
        fmt::format("  skipped     {} of {} steps: NaN or Inf in the loss or the "
                    "averaged gradient (--skip-nonfinite)",
                    format_count(s.skipped_steps), format_count(s.steps)));
  }
  if (s.tested) {
    lines.push_back(fmt::format("  test        accuracy {:.2f}%, loss {:.4f} ({} samples)",
                                100.0 * s.test.accuracy, s.test.loss,
                                format_count(s.test.samples)));
  }
  const ringdp::train::StepTimes& t = s.times;
  const double compute = t.forward + t.backward;
  const double whole = t.data + compute + t.exposed_comm + t.optimizer;
  lines.push_back(fmt::format(
      "  time/rank   data {:.2f} s ({}), compute {:.2f} s ({}; forward {:.2f}, backward {:.2f}), "
      "exposed communication {:.2f} s ({}), optimizer {:.2f} s ({})",
      t.data, percent(t.data, whole), compute, percent(compute, whole), t.forward, t.backward,
      t.exposed_comm, percent(t.exposed_comm, whole), t.optimizer, percent(t.optimizer, whole)));
  if (info.ranks == 1) {
    lines.push_back(
        fmt::format("  scaling     single rank: pass --single-rank-sps {:.0f} to runs "
                    "of this job on more ranks for their parallel efficiency",
                    sps));
  } else if (o.single_rank_sps > 0) {
    lines.push_back(
        fmt::format("  scaling     {:.1f}x the single-rank {:.0f} samples/s on {} "
                    "ranks: parallel efficiency {:.0f}%",
                    sps / o.single_rank_sps, o.single_rank_sps, info.ranks,
                    100.0 * sps / (o.single_rank_sps * info.ranks)));
  } else {
    lines.push_back(
        "  scaling     parallel efficiency unknown: run once with -np 1 and pass its "
        "samples/s as --single-rank-sps");
  }
  if (!s.checkpoint.empty()) lines.push_back(fmt::format("  checkpoint  {}", s.checkpoint));
  if (!o.metrics.empty()) lines.push_back(fmt::format("  metrics     {}", o.metrics));
  if (!o.timeline.empty()) lines.push_back(fmt::format("  timeline    {}", o.timeline));
  return lines;
}

}  // namespace ringdp_train
