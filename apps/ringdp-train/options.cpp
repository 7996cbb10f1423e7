#include "options.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <system_error>

#include "ringdp/error.hpp"
#include "ringdp/nn/model_spec.hpp"

namespace ringdp_train {
namespace {

// Defaults of the bundled run (`mpirun -np 2 ringdp-train`), chosen by experiment on the
// bundled 8,000/2,000 MNIST subset with the 784-512-256-10 MLP: see README "Main job".
constexpr int kDefaultEpochs = 10;
constexpr std::size_t kDefaultBatch = 32;
constexpr double kDefaultLr = 0.1;
constexpr double kDefaultMomentum = 0.9;
constexpr const char* kDefaultSchedule = "cosine";

// "3" or "3e": every 3 epochs; "500s": every 500 steps.
bool parse_every(const std::string& text, Options& o) {
  if (text.empty()) return false;
  std::string digits = text;
  const char unit = digits.back();
  if (unit == 'e' || unit == 's') digits.pop_back();
  if (digits.empty() || digits.size() > 12 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const std::int64_t n = std::stoll(digits);
  if (n < 1) return false;
  o.checkpoint_every_epochs = unit == 's' ? 0 : n;
  o.checkpoint_every_steps = unit == 's' ? n : 0;
  return true;
}

std::string first_line(const std::string& text) {
  const std::size_t end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// The flags by topic, each group under its heading in --help (CLI11 groups the options
// added after option_defaults()->group()).

void add_training_flags(CLI::App& app, Options& o) {
  app.option_defaults()->group("Model and training");
  app.add_option("--model", o.model, "MLP widths, input-hidden...-classes");
  app.add_option("--epochs", o.epochs, "total epochs of the run (a resumed run continues up to it)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--batch", o.batch,
                 "samples per batch per rank (global batch = ranks x this; with --virtual-ranks "
                 "per virtual rank)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--lr", o.lr, "learning rate (of one rank's batch; see --scale-lr)")
      ->check(CLI::PositiveNumber);
  app.add_option("--momentum", o.momentum, "SGD momentum, in [0, 1)")
      ->check(CLI::Range(0.0, 0.999999));
  app.add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)");
  app.add_option("--weight-decay", o.weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--optimizer", o.optimizer, "sgd or adam")->check(CLI::IsMember({"sgd", "adam"}));
  app.add_option("--schedule", o.schedule, "learning-rate schedule: constant, step or cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}));
  app.add_option("--schedule-epochs", o.schedule_epochs,
                 "cosine: decay horizon; step: period (0 = --epochs for cosine, 30 for step)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--gamma", o.gamma, "step schedule: factor applied every period")
      ->check(CLI::PositiveNumber);
  app.add_flag("--scale-lr", o.scale_lr,
               "linear scaling rule: peak rate = lr x ranks (Goyal et al.)");
  app.add_option("--warmup", o.warmup_epochs, "gradual warm-up, in epochs")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of the initialisation and the sample order");
  app.add_flag("--skip-nonfinite", o.skip_nonfinite,
               "skip a step whose loss or averaged gradient holds NaN or Inf (no update on any "
               "rank, a warning, counted in the summary and metrics) instead of stopping");
}

void add_data_flags(CLI::App& app, Options& o) {
  app.option_defaults()->group("Data");
  app.add_option("--data", o.data, "HDF5 dataset (/train/{images,labels}, optional /test/...)")
      ->default_str("<prefix>/share/ringdp/mnist10k.h5 (bundled)");
  app.add_option("--shuffle", o.shuffle,
                 "sampling: global (permutation over all ranks), shard (each rank its own "
                 "chunks) or auto (global when the data fits --cache-bytes)")
      ->check(CLI::IsMember({"auto", "global", "shard"}));
  app.add_option("--io", o.io,
                 "how the ranks read the data file: serial (each rank opens it) or mpiio "
                 "(opened together through MPI-IO, parallel HDF5)")
      ->check(CLI::IsMember({"serial", "mpiio"}));
  app.add_option("--virtual-ranks", o.virtual_ranks,
                 "play the sample streams of this many ranks (a multiple of the rank count; "
                 "0 = off); --batch is then per virtual rank")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--cache-bytes", o.cache_bytes, "bytes of data each rank may keep in memory")
      ->transform(CLI::AsSizeValue(false));
}

void add_parallel_flags(CLI::App& app, Options& o) {
  app.option_defaults()->group("Parallelism and communication");
  app.add_option("--algo", o.algo, "gradient allreduce: auto, ring, rd, mpi, ps, shm or hier")
      ->check(CLI::IsMember({"auto", "ring", "rd", "mpi", "ps", "shm", "hier"}));
  app.add_option("--bucket-bytes", o.bucket_bytes,
                 "gradient bucket size (0 = measured default or RINGDP_BUCKET_BYTES)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--threads", o.threads,
                 "compute threads per rank (0: one per CPU the rank may use, less one for the "
                 "reducer's and the loader's threads)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--tp", o.tp,
                 "tensor parallelism: ranks sharing each layer of a model replica (data "
                 "replicas = ranks / (tp x pp))")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--pp", o.pp, "pipeline parallelism: stages of consecutive layers per replica")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--micro-batches", o.micro_batches,
                 "micro-batches of a pipeline step (1F1B schedule; with --pp > 1)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_flag("--check", o.check,
               "check mode: verify collective arguments and replica hashes (also RINGDP_CHECK=1)");
}

void add_checkpoint_flags(CLI::App& app, Options& o) {
  app.option_defaults()->group("Checkpoints");
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "write checkpoints here (at every epoch's end by default, and at the end)");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "checkpoint period: N or Ne = every N epochs, Ns = every N steps");
  app.add_option("--keep", o.keep, "checkpoints kept in --checkpoint-dir (the newest)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--resume", o.resume,
                 "continue from a checkpoint: a file, or with no value the latest in "
                 "--checkpoint-dir (default: off, start afresh)")
      ->expected(0, 1);
}

void add_output_flags(CLI::App& app, Options& o) {
  app.option_defaults()->group("Outputs");
  app.add_option("--metrics", o.metrics, "write a metrics CSV (one row per epoch)");
  app.add_flag("--metrics-steps", o.metrics_steps, "also one metrics row per step");
  app.add_option("--timeline", o.timeline,
                 "write a Chrome trace JSON of every step (chrome://tracing, Perfetto)");
  app.add_flag("--quiet", o.quiet, "print only errors and the final summary");
  app.add_option("--progress", o.progress,
                 "progress line: auto (in place on a terminal, else lines), tty, lines or off")
      ->check(CLI::IsMember({"auto", "tty", "lines", "off"}));
  app.add_option("--progress-interval", o.progress_interval,
                 "seconds between progress lines when not on a terminal")
      ->check(CLI::PositiveNumber);
  app.add_option("--single-rank-sps", o.single_rank_sps,
                 "samples/s of a 1-rank run of the same job, for the parallel efficiency")
      ->check(CLI::NonNegativeNumber);
}

// What the flags' own checks cannot see: combinations, and values to derive or make
// canonical. Returns the problem as one line, empty when none.
std::string complete(Options& o) {
  if (!parse_every(o.checkpoint_every, o)) {
    return fmt::format("--checkpoint-every: '{}' is not N, Ne (epochs) or Ns (steps) with N >= 1",
                       o.checkpoint_every);
  }
  if (o.resume_given && o.resume.empty() && o.checkpoint_dir.empty()) {
    return "--resume without a file needs --checkpoint-dir (where to find the latest checkpoint)";
  }
  if (o.nesterov && o.momentum <= 0.0) return "--nesterov needs --momentum > 0";
  try {
    const auto widths = ringdp::nn::parse_model_spec(o.model);
    o.model = fmt::format("{}", fmt::join(widths, "-"));  // canonical: "0784-10" == "784-10"
  } catch (const ringdp::Error& e) {
    return fmt::format("--model: {}", e.cause());
  }
  if (o.data.empty()) o.data = default_data_path();
  return {};
}

}  // namespace

std::string default_data_path() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "ringdp" / "mnist10k.h5";
    if (fs::exists(installed, ec)) return installed.string();
  }
#ifdef RINGDP_SOURCE_DATA_DIR
  const fs::path source = fs::path(RINGDP_SOURCE_DATA_DIR) / "mnist10k.h5";
  if (fs::exists(source, ec)) return source.string();
#endif
  return "data/mnist10k.h5";
}

ParseResult parse(int argc, char** argv, Options& o, std::string& message) {
  o.epochs = kDefaultEpochs;
  o.batch = kDefaultBatch;
  o.lr = kDefaultLr;
  o.momentum = kDefaultMomentum;
  o.schedule = kDefaultSchedule;
  o.argv.assign(argv, argv + argc);

  CLI::App app(
      "ringdp-train: data-parallel training of an MLP over MPI, on an HDF5 dataset.\n"
      "Run it under mpirun, e.g. mpirun -np 2 ringdp-train",
      "ringdp-train");
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(34);
  add_training_flags(app, o);
  add_data_flags(app, o);
  add_parallel_flags(app, o);
  add_checkpoint_flags(app, o);
  add_output_flags(app, o);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    message = app.help();
    return ParseResult::Help;
  } catch (const CLI::CallForAllHelp&) {
    message = app.help("", CLI::AppFormatMode::All);
    return ParseResult::Help;
  } catch (const CLI::ParseError& e) {
    message = first_line(e.what());
    return ParseResult::Error;
  }
  o.resume_given = app.count("--resume") > 0;
  message = complete(o);
  return message.empty() ? ParseResult::Run : ParseResult::Error;
}

}  // namespace ringdp_train
