#include "options.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "ringdp/error.hpp"

namespace ringdp::bench {

std::size_t parse_bytes(const std::string& text) {
  std::size_t pos = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &pos);
  } catch (const std::exception&) {
    throw InvalidArgument(fmt::format("'{}' is not a byte count (e.g. 8, 4K, 256M, 1GiB)", text));
  }
  std::string suffix = text.substr(pos);
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  int shift = -1;
  if (suffix.empty() || suffix == "B") shift = 0;
  if (suffix == "K" || suffix == "KIB") shift = 10;
  if (suffix == "M" || suffix == "MIB") shift = 20;
  if (suffix == "G" || suffix == "GIB") shift = 30;
  if (shift < 0 || text.empty() || text[0] == '-') {
    throw InvalidArgument(fmt::format("'{}' is not a byte count (e.g. 8, 4K, 256M, 1GiB)", text));
  }
  if (value > (~0ULL >> shift))
    throw InvalidArgument(fmt::format("byte count '{}' overflows", text));
  return static_cast<std::size_t>(value << shift);
}

std::string format_bytes(std::size_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (unit < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{} {}", bytes, kUnits[unit]);
}

namespace {

std::vector<Algorithm> parse_algorithm_list(const std::string& text) {
  std::vector<Algorithm> algorithms;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    const std::string name = text.substr(begin, comma - begin);
    const Algorithm algorithm = parse_algorithm(name);
    for (Algorithm seen : algorithms) {
      if (seen == algorithm) throw InvalidArgument(fmt::format("--algos lists '{}' twice", name));
    }
    algorithms.push_back(algorithm);
    begin = comma + 1;
  }
  return algorithms;
}

void validate(const Options& o) {
  if (o.min_bytes == 0) throw InvalidArgument("--min-bytes must be at least 1");
  if (o.min_bytes > o.max_bytes) {
    throw InvalidArgument(
        fmt::format("--min-bytes ({}) is larger than --max-bytes ({})", o.min_bytes, o.max_bytes));
  }
  if (o.max_bytes < size_of(o.type)) {
    throw InvalidArgument(fmt::format("--max-bytes ({}) is smaller than one {} element",
                                      o.max_bytes, to_string(o.type)));
  }
  if (o.factor < 2) throw InvalidArgument("--factor must be an integer >= 2");
  if (o.warmup < 0) throw InvalidArgument("--warmup must be >= 0");
  if (o.iters < 0) throw InvalidArgument("--iters must be >= 0 (0: automatic)");
  if (o.repetitions < 1) throw InvalidArgument("--reps must be >= 1");
  if (!(o.point_seconds > 0)) throw InvalidArgument("--point-seconds must be > 0");
  if (o.min_iters < 1) throw InvalidArgument("--min-iters must be >= 1");
  if (!o.tune_path.empty()) {
    for (const Algorithm needed : {Algorithm::Ring, Algorithm::RecursiveDoubling, Algorithm::Mpi}) {
      if (std::find(o.algorithms.begin(), o.algorithms.end(), needed) == o.algorithms.end()) {
        throw InvalidArgument("--tune needs ring, rd and mpi in --algos");
      }
    }
  }
  if (o.op == ReduceOp::Average && (o.type == DataType::Int32 || o.type == DataType::Int64)) {
    throw InvalidArgument(fmt::format(
        "--op avg needs a floating-point --dtype (float or double), got {}", to_string(o.type)));
  }
}

// The flags given as text, converted once CLI11 has parsed them.
struct TextOptions {
  std::string min_bytes = "8";
  std::string max_bytes = "256M";
  std::string algos = "ring,rd,mpi,ps,shm,hier,auto";
  std::string dtype = "float";
  std::string op = "sum";
  std::string corrupt;
  std::string segment;
};

void add_options(CLI::App& app, Options& o, TextOptions& t) {
  app.add_option("--min-bytes", t.min_bytes, "Smallest message (suffixes K, M, G)")
      ->capture_default_str();
  app.add_option("--max-bytes", t.max_bytes, "Largest message (suffixes K, M, G)")
      ->capture_default_str();
  app.add_option("--factor", o.factor, "Size multiplier between points (integer >= 2)")
      ->capture_default_str();
  app.add_option("--algos", t.algos,
                 "Comma-separated list of ring, rd, mpi, ps, shm, hier, auto (by default shm "
                 "is left out when the ranks span several nodes, hier when they share one)")
      ->capture_default_str();
  app.add_flag("--shared", o.shared,
               "Put the working buffer in a SharedBuffer (the node's shared window): shm and "
               "hier then need no copy-in");
  app.add_flag("!--no-floor", o.floor,
               "Do not measure the memory floor (every rank reading and writing its buffer in "
               "place, all at once) at every size");
  app.add_option("--warmup", o.warmup,
                 "Untimed calls per algorithm and size, after the one checked call")
      ->capture_default_str();
  app.add_option("--iters", o.iters,
                 "Timed calls per algorithm and size (0: enough for --point-seconds, >= 5)")
      ->capture_default_str();
  app.add_option("--reps", o.repetitions,
                 "Timed blocks per algorithm and size; algorithms take turns block by block, "
                 "the order rotated each repetition")
      ->capture_default_str();
  app.add_option("--point-seconds", o.point_seconds,
                 "Timed seconds per (size, algorithm) when --iters is 0")
      ->capture_default_str();
  app.add_option("--min-iters", o.min_iters,
                 "With --iters 0: at least this many timed calls per point (lower it when "
                 "large messages take seconds: small ones still get --point-seconds)")
      ->capture_default_str();
  app.add_option("--dtype", t.dtype, "float, double, int32 or int64")->capture_default_str();
  app.add_option("--op", t.op, "sum, avg, min, max or prod")->capture_default_str();
  app.add_option("--csv", o.csv_path, "Write the table as CSV to this file");
  app.add_option("--json", o.json_path, "Write the run header and the table as JSON");
  app.add_option("--tune", o.tune_path,
                 "Write (or update, for this rank count) a tuning file for auto: the fastest of "
                 "ring, rd, mpi per size, and the ring segment used; use it with "
                 "RINGDP_TUNING=FILE. Under Open MPI "
                 "write --tune=FILE: mpirun takes a separate --tune as its own option");
  app.add_option("--segment", t.segment,
                 "Ring segment size for this run (suffixes K, M; overrides RINGDP_SEGMENT_BYTES "
                 "and RINGDP_TUNING)");
  app.add_option("--seed", o.seed, "Seed of the verification data")->capture_default_str();
  // Hidden (empty group): a test hook, not a user feature.
  app.add_option("--corrupt-for-testing", t.corrupt)->group("");
}

// Converts the text flags into `o` and checks the whole. Throws InvalidArgument.
void convert(const TextOptions& t, Options& o) {
  o.min_bytes = parse_bytes(t.min_bytes);
  o.max_bytes = parse_bytes(t.max_bytes);
  o.algorithms = parse_algorithm_list(t.algos);
  o.type = parse_data_type(t.dtype);
  o.op = parse_reduce_op(t.op);
  if (!t.corrupt.empty()) o.corrupt_for_testing = parse_algorithm(t.corrupt);
  if (!t.segment.empty()) {
    o.segment_bytes = parse_bytes(t.segment);
    if (o.segment_bytes == 0) throw InvalidArgument("--segment must be at least 1 byte");
  }
  validate(o);
}

}  // namespace

ParseResult parse_options(int argc, char** argv) {
  Options o;
  TextOptions text;
  CLI::App app{
      "ringdp-bench: allreduce bus bandwidth per message size, for every ringdp algorithm "
      "next to MPI_Allreduce, in one interleaved run. Run it under mpirun or srun.",
      "ringdp-bench"};
  add_options(app, o, text);

  ParseResult result;
  try {
    app.parse(argc, argv);
    convert(text, o);
    o.algorithms_given = app.count("--algos") > 0;
  } catch (const CLI::CallForHelp&) {
    result.message = app.help();
    return result;
  } catch (const CLI::ParseError& e) {
    result.exit_code = 2;
    result.message = fmt::format("ringdp-bench: {}\nRun with --help for the options.", e.what());
    return result;
  } catch (const Error& e) {
    result.exit_code = 2;
    result.message = fmt::format("ringdp-bench: {}\nRun with --help for the options.", e.cause());
    return result;
  }
  result.options = o;
  return result;
}

}  // namespace ringdp::bench
