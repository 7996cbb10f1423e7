// ringdp-bench: the allreduce table people judge a collective library by. For each message
// size, every algorithm is checked against PMPI_Allreduce and timed, interleaved with the
// others; rank 0 prints the table, a summary, and optionally CSV and JSON files.
// The exit status is the same on every rank: 0 when every result was right, 1 when any
// element differed (or the run failed), 2 for bad flags.

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <ringdp/io/durable_file.hpp>
#include <ringdp/ringdp.hpp>
#include <string>
#include <vector>

#include "measure.hpp"
#include "options.hpp"
#include "report.hpp"
#include "run_info.hpp"
#include "tuning_file.hpp"

namespace {

// The command as the JSON records it, with absolute paths below the working directory
// written relative to it (a launcher may pass the program or the output files as absolute
// paths): results committed from a checkout then name no directory of the machine.
std::string command_line(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path cwd = fs::current_path(error);
  std::string text;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) text += ' ';
    const fs::path arg(argv[i]);
    const fs::path relative =
        arg.is_absolute() && !error ? arg.lexically_relative(cwd) : fs::path();
    const bool below = !relative.empty() && *relative.begin() != "..";
    text += below ? relative.string() : std::string(argv[i]);
  }
  return text;
}

// The algorithms of the run: those of --algos, or the defaults without the ones that cannot
// run on this layout (shm over several nodes; hier on one node, where it runs shm). An
// algorithm given with --algos that cannot run is an error on every rank (the layout is
// the same everywhere).
ringdp::bench::Options runnable(ringdp::bench::Options options, const ringdp::NodeLayout& nodes,
                                int ranks, std::string& note) {
  using ringdp::Algorithm;
  std::vector<Algorithm> kept;
  for (const Algorithm algorithm : options.algorithms) {
    const bool shm_elsewhere = algorithm == Algorithm::Shm && !nodes.one_node();
    const bool hier_is_shm = algorithm == Algorithm::Hierarchical && nodes.one_node();
    if (shm_elsewhere && options.algorithms_given) {
      throw ringdp::InvalidArgument(
          fmt::format("--algos shm needs every rank on one node, but the {} ranks are on {} nodes",
                      ranks, nodes.nodes));
    }
    if (!options.algorithms_given && (shm_elsewhere || hier_is_shm)) {
      note += fmt::format("# {} left out: {}\n", ringdp::to_string(algorithm),
                          shm_elsewhere ? "the ranks span several nodes"
                                        : "every rank shares one node, where hier runs shm");
      continue;
    }
    kept.push_back(algorithm);
  }
  options.algorithms = kept;
  return options;
}

int run(const ringdp::Communicator& comm, const ringdp::bench::Options& given,
        const std::string& command) {
  using namespace ringdp::bench;
  // Output files are published whole and on disk, or not at all (ringdp/io/durable_file.hpp).
  using ringdp::io::check_writable;
  using ringdp::io::read_file_if_exists;
  using ringdp::io::write_file_durably;
  const bool root = comm.rank() == 0;
  std::string note;
  const Options options = ringdp::agree_on(
      comm, [&] { return runnable(given, comm.node_layout(), comm.size(), note); });

  // Checks that can fail on one rank only are agreed, so every rank stops together.
  const RunInfo info = collect_run_info(comm);
  ringdp::agree_on(comm, [&] {
    (void)ringdp::tuning_from_environment();  // a malformed RINGDP_TUNING file fails here
    const std::size_t needed = bytes_needed_per_rank(options) * info.ranks_on_my_host;
    if (info.mem_available > 0 && needed > info.mem_available) {
      throw ringdp::InvalidArgument(fmt::format(
          "--max-bytes {} needs about {:.1f} GiB on this host ({} ranks x 4 buffers), but only "
          "{:.1f} GiB are available: lower --max-bytes",
          options.max_bytes, static_cast<double>(needed) / (1 << 30), info.ranks_on_my_host,
          static_cast<double>(info.mem_available) / (1 << 30)));
    }
    if (root && !options.csv_path.empty()) check_writable(options.csv_path);
    if (root && !options.json_path.empty()) check_writable(options.json_path);
    if (root && !options.tune_path.empty()) check_writable(options.tune_path);
  });

  // The same argv on every rank, so the same segment everywhere (a mismatch would deadlock).
  if (options.segment_bytes > 0) ringdp::set_ring_segment_bytes(options.segment_bytes);
  if (root) {
    std::fputs(note.c_str(), stdout);
    std::fputs(table_header(info, options).c_str(), stdout);
    std::fflush(stdout);
  }
  const std::vector<Row> rows = run_benchmark(comm, options, [&](std::span<const Row> size_rows) {
    if (!root) return;
    std::fputs(table_rows(size_rows, options, comm.size()).c_str(), stdout);
    std::fflush(stdout);
  });
  const Summary summary = summarize(rows, options, comm.size());
  if (root) {
    std::fputs(summary_text(summary).c_str(), stdout);
    std::fflush(stdout);
  }
  ringdp::agree_on(comm, [&] {
    if (!root) return;
    if (!options.csv_path.empty()) {
      write_file_durably(options.csv_path, to_csv(rows, options, comm.size()));
    }
    if (!options.json_path.empty()) {
      write_file_durably(options.json_path, to_json(info, options, rows, summary, command));
    }
    if (!options.tune_path.empty()) {
      // The segment the ring was measured with, whether --segment, RINGDP_SEGMENT_BYTES, the
      // current tuning file or the built-in default chose it: the rules hold for that segment,
      // so the file carries it, and the library reading the file back runs the same ring.
      const std::size_t segment = ringdp::ring_segment_bytes(comm.size());
      const std::string measured_with =
          fmt::format("{} {}, {} .. {}, ring segment {}", ringdp::to_string(options.type),
                      ringdp::to_string(options.op), format_bytes(options.min_bytes),
                      format_bytes(options.max_bytes), format_bytes(segment));
      write_file_durably(options.tune_path,
                         tuning_file(read_file_if_exists(options.tune_path), rows, comm.size(),
                                     segment, info, measured_with));
    }
  });
  // The rows are reduced over ranks, so wrong_total, and the exit code, agree everywhere.
  return summary.wrong_total == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Single);
  ringdp::Communicator comm(MPI_COMM_WORLD);

  const ringdp::bench::ParseResult parsed = ringdp::bench::parse_options(argc, argv);
  if (!parsed.options) {
    if (comm.rank() == 0)
      std::fputs((parsed.message + "\n").c_str(), parsed.exit_code ? stderr : stdout);
    return parsed.exit_code;
  }
  try {
    return run(comm, *parsed.options, command_line(argc, argv));
  } catch (const ringdp::Error& e) {
    if (e.collective()) {
      // Every rank has thrown the same agreed error: report once and end normally.
      if (comm.rank() == 0) std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    ringdp::abort_job(comm.native(), e.cause());
  } catch (const std::exception& e) {
    // A failure on this rank alone while the others may wait in a collective: end the job
    // with the cause rather than leave it hanging.
    ringdp::abort_job(comm.native(), e.what());
  }
}
