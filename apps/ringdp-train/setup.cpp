#include "setup.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/utc_time.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/model_spec.hpp"
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

Model::Model(const ringdp::Communicator& comm, const Options& o, const data::ShardedLoader& data,
             const ringdp::parallel::Grid* grid) {
  const std::vector<std::size_t> widths = nn::parse_model_spec(o.model);
  std::string why;
  if (widths.front() != data.features()) {
    why = fmt::format(
        "model {} takes {} inputs but '{}' has {} features per sample (use --model {}-...)",
        o.model, widths.front(), o.data, data.features(), data.features());
  } else if (widths.back() < static_cast<std::size_t>(data.classes())) {
    why = fmt::format("model {} has {} outputs but '{}' has {} classes", o.model, widths.back(),
                      o.data, data.classes());
  }
  ringdp::agree(comm, why);
  if (grid == nullptr) {
    net = std::make_unique<nn::Sequential<float>>(nn::Sequential<float>::from_spec(o.model));
    net->initialize(o.seed);
  } else {
    // The same InvalidArgument on every rank when the model cannot be split over the grid.
    split = std::make_unique<ringdp::parallel::ParallelMlp<float>>(*grid, o.model, o.micro_batches);
    split->initialize(o.seed);  // this rank's part of the unsplit model's initialisation
    replica = std::make_unique<train::ParallelReplica>(*split);
  }
  optimizer = make_optimizer(o, local().parameter_count());
}

std::size_t Model::full_parameter_count() const {
  return split ? split->layout().full_parameter_count() : net->parameter_count();
}

std::unique_ptr<train::Trainer> make_trainer(const ringdp::Communicator& comm,
                                             const ringdp::Communicator& data, Model& model,
                                             const Options& o) {
  if (model.replica) {
    return std::make_unique<train::Trainer>(data, *model.replica, *model.optimizer,
                                            trainer_options(o));
  }
  return std::make_unique<train::Trainer>(comm, *model.net, *model.optimizer, trainer_options(o));
}

train::TrainerOptions trainer_options(const Options& o) {
  train::TrainerOptions t;
  t.bucket_bytes = o.bucket_bytes;
  t.algorithm = ringdp::parse_algorithm(o.algo);
  t.check = o.check;
  t.schedule = make_schedule(o);
  t.record_timeline = !o.timeline.empty();
  t.skip_nonfinite = o.skip_nonfinite;
  t.threads = o.threads;
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
