#include "setup.hpp"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>

#include "common/utc_time.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/version.hpp"

namespace ringdp_train {
namespace {

namespace data = ringdp::data;
namespace nn = ringdp::nn;
namespace train = ringdp::train;

data::SamplingMode sampling_mode(const std::string& name) {
  if (name == "global") return data::SamplingMode::Global;
  if (name == "shard") return data::SamplingMode::Shard;
  return data::SamplingMode::Auto;
}

data::IoDriver io_driver(const Options& o) {
  return o.io == "mpiio" ? data::IoDriver::MpiIo : data::IoDriver::Serial;
}

// Evaluation: every sample once, in file order, in batches of at least 256.
std::unique_ptr<data::ShardedLoader> open_test(const ringdp::Communicator& comm, const Options& o,
                                               int classes) {
  data::H5Dataset test_set(
      comm, o.data,
      {.names = data::DatasetNames::test(), .classes = classes, .driver = io_driver(o)});
  return std::make_unique<data::ShardedLoader>(
      comm, std::move(test_set),
      data::SamplerOptions{.mode = sampling_mode(o.shuffle),
                           .batch_size = std::max<std::size_t>(o.batch, 256),
                           .seed = o.seed,
                           .shuffle = false,
                           .evaluation = true},
      data::LoaderOptions{.read_ahead = 2, .cache_bytes = o.cache_bytes});
}

std::unique_ptr<nn::Optimizer<float>> make_optimizer(const Options& o, std::size_t size) {
  if (o.optimizer == "adam") {
    return std::make_unique<nn::Adam<float>>(size, nn::AdamOptions{.weight_decay = o.weight_decay});
  }
  return std::make_unique<nn::Sgd<float>>(
      size, nn::SgdOptions{
                .momentum = o.momentum, .nesterov = o.nesterov, .weight_decay = o.weight_decay});
}

train::LrSchedule make_schedule(const Options& o) {
  train::LrSchedule s;
  s.kind = train::parse_schedule(o.schedule);
  s.base_lr = o.lr;
  s.gamma = o.gamma;
  s.step_epochs = o.schedule_epochs > 0 ? o.schedule_epochs : 30.0;
  s.total_epochs = o.schedule_epochs > 0 ? o.schedule_epochs : static_cast<double>(o.epochs);
  s.scale_with_ranks = o.scale_lr;
  s.warmup_epochs = o.warmup_epochs;
  return s;
}

std::string joined_argv(const Options& o) {
  std::string s;
  for (const std::string& a : o.argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

Data::Data(const ringdp::Communicator& comm, const Options& o)
    : train(comm,
            data::H5Dataset(comm, o.data,
                            {.names = data::DatasetNames::train(), .driver = io_driver(o)}),
            data::SamplerOptions{.mode = sampling_mode(o.shuffle),
                                 .batch_size = o.batch,
                                 .seed = o.seed,
                                 .shuffle = true,
                                 .virtual_ranks = o.virtual_ranks},
            data::LoaderOptions{.read_ahead = 4, .cache_bytes = o.cache_bytes}) {
  try {
    test = open_test(comm, o, train.classes());
  } catch (const ringdp::Error& e) {
    if (!e.collective()) throw;
    no_test = e.cause();  // every rank skips evaluation alike
  }
}

Model::Model(const ringdp::Communicator& comm, const Options& o, const data::ShardedLoader& data)
    : net(nn::Sequential<float>::from_spec(o.model)) {
  std::string why;
  if (net.input_size() != data.features()) {
    why = fmt::format(
        "model {} takes {} inputs but '{}' has {} features per sample (use --model {}-...)",
        o.model, net.input_size(), o.data, data.features(), data.features());
  } else if (net.output_size() < static_cast<std::size_t>(data.classes())) {
    why = fmt::format("model {} has {} outputs but '{}' has {} classes", o.model, net.output_size(),
                      o.data, data.classes());
  }
  ringdp::agree(comm, why);
  net.initialize(o.seed);
  optimizer = make_optimizer(o, net.parameter_count());
}

void set_compute_threads(int threads, Console& out) {
  // Eigen parallelises its products with OpenMP only when the library was built with it;
  // otherwise it stays single-threaded whatever is asked.
  Eigen::setNbThreads(threads);
  if (threads > 1 && Eigen::nbThreads() < threads) {
    out.line(fmt::format(
        "note: --threads {}: this build runs Eigen single-threaded (no OpenMP); using 1 "
        "thread per rank",
        threads));
  }
}

train::TrainerOptions trainer_options(const Options& o) {
  train::TrainerOptions t;
  t.bucket_bytes = o.bucket_bytes;
  t.algorithm = ringdp::parse_algorithm(o.algo);
  t.check = o.check;
  t.schedule = make_schedule(o);
  t.record_timeline = !o.timeline.empty();
  t.skip_nonfinite = o.skip_nonfinite;
  return t;
}

train::CheckpointPolicy checkpoint_policy(const Options& o) {
  return {.directory = o.checkpoint_dir,
          .every_epochs = o.checkpoint_every_epochs,
          .every_steps = o.checkpoint_every_steps,
          .keep = o.keep};
}

train::RunIdentity run_identity(const Options& o, const Data& data, const RunInfo& info) {
  return train::run_identity(o.model, data.train.sampler(), [&o, &info] {
    return train::CheckpointMetadata{{"ringdp_version", RINGDP_VERSION_STRING},
                                     {"git_hash", RINGDP_GIT_HASH},
                                     {"date", ringdp::apps::utc_now()},
                                     {"flags", joined_argv(o)},
                                     {"data", o.data},
                                     {"hosts", info.hosts_text}};
  });
}

}  // namespace ringdp_train
