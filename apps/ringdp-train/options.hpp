#pragma once
// The flags of ringdp-train and their parsing.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ringdp_train {

/// Every flag of the command line, with its default.
struct Options {
  std::string data;  // empty until resolved: the bundled mnist10k.h5
  std::string model = "784-512-256-10";
  int epochs = 0;         // set in options.cpp (kDefaultEpochs)
  std::size_t batch = 0;  // per rank
  double lr = 0.0;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::string optimizer = "sgd";
  std::string schedule;
  double schedule_epochs = 0.0;  // cosine horizon / step period; 0: --epochs (cosine)
  double gamma = 0.1;
  bool scale_lr = false;
  double warmup_epochs = 0.0;
  std::string algo = "auto";
  std::string shuffle = "auto";
  std::string io = "serial";  // how the ranks open the data file: serial or mpiio
  int virtual_ranks = 0;
  std::uint64_t cache_bytes = std::uint64_t{256} << 20;
  std::uint64_t bucket_bytes = 0;  // 0: the library's measured default
  std::uint64_t seed = 1;
  int threads = 1;
  int tp = 1;             // tensor-parallel ranks per replica
  int pp = 1;             // pipeline stages per replica
  int micro_batches = 1;  // of a pipeline step
  std::string checkpoint_dir;
  std::string checkpoint_every = "1e";
  int keep = 3;
  bool resume_given = false;
  std::string resume;  // empty with resume_given: the latest checkpoint of --checkpoint-dir
  std::string metrics;
  bool metrics_steps = false;
  std::string timeline;
  bool check = false;
  bool skip_nonfinite = false;
  bool quiet = false;
  std::string progress = "auto";
  double progress_interval = 2.0;
  double single_rank_sps = 0.0;
  std::vector<std::string> argv;  // the command line, for checkpoint metadata

  // Derived from checkpoint_every by parse().
  std::int64_t checkpoint_every_epochs = 1;
  std::int64_t checkpoint_every_steps = 0;
};

/// What parse() decided.
enum class ParseResult { Run, Help, Error };

/// Parses argv into `options`. On --help, `message` holds the help text; on a bad flag a
/// single line naming the problem. Pure: the same on every rank, no MPI.
ParseResult parse(int argc, char** argv, Options& options, std::string& message);

/// The bundled dataset: <prefix>/share/ringdp/mnist10k.h5 next to the installed
/// executable, else the source tree's data/mnist10k.h5, else data/mnist10k.h5 in the
/// working directory (returned even when missing, so the error names it).
std::string default_data_path();

}  // namespace ringdp_train
