// bench-data-read: how fast a shuffled epoch of the shard-mode loader reads a file larger
// than its cache budget, next to a plain whole-file read and to naive random batches.
//
//   mpirun -np P bench-data-read [--samples 200000 --features 784 --chunk-rows 1024 ...]
//
// For each file (gzip level 1, and uncompressed), interleaved over --repeats rounds:
//   whole-file        each rank reads its contiguous 1/P of the rows in slabs of 8 chunks
//   whole+float       the same, each slab also scaled to floats in file order (no shuffle)
//   shard-epoch       a fresh ShardedLoader (shard mode, --cache-mib budget) runs one
//                     shuffled epoch, batches of --batch rows, converted to floats as the
//                     trainer gets them; this first epoch also fills the cache budget
//   shard-next-epoch  the same loader's next epoch (what every later epoch of a run costs)
//   random-batches    batches of --batch random rows, each batch one HDF5 row selection
//                     (what global mode does without a cache), for --random-seconds
//   whole-file/mpiio, shard-epoch/mpiio  the same through IoDriver::MpiIo (parallel HDF5)
// Throughput = stored bytes (images) delivered by all ranks / the slowest rank's time.
// CPU throughput = the same bytes / the CPU seconds of all ranks (all threads): on a
// shared, loaded machine it says what each method costs independently of the scheduler.
// Rank 0 prints a table (median, min, max over rounds) and writes --csv.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <vector>

#include "ringdp/ringdp.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace rd = ringdp::data;

// CPU seconds of this process (all its threads: the loader's reader thread included).
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

double total_over_ranks(const ringdp::Communicator& comm, double mine) {
  double all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_SUM, comm.native());
  return all;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double slowest(const ringdp::Communicator& comm, double mine) {
  double all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_MAX, comm.native());
  return all;
}

// Each rank reads its contiguous share, slab by slab; returns the bytes it read. With
// `to_float`, each slab is also scaled to floats in file order (v / 255.0f, with the
// library's scale_to_unit, the loader's own conversion), one chunk at a time into a reused
// chunk-sized buffer (as the loader fills batches that stay in cache): the cost of the
// conversion alone, without shuffling.
std::size_t whole_file(const ringdp::Communicator& comm, const rd::H5Dataset& data,
                       bool to_float = false) {
  const std::size_t n = data.size();
  const auto p = static_cast<std::size_t>(comm.size());
  const auto r = static_cast<std::size_t>(comm.rank());
  const std::size_t chunks = data.chunks();
  const std::size_t chunk_rows = data.chunk_rows();
  const std::size_t row_bytes = data.row_bytes();  // out of the loops: a call into the library
  const std::size_t lo = std::min(n, chunks * r / p * chunk_rows);
  const std::size_t hi = std::min(n, chunks * (r + 1) / p * chunk_rows);
  const std::size_t slab = 8 * chunk_rows;
  std::vector<std::byte> images(slab * row_bytes);
  std::vector<std::int32_t> labels(slab);
  std::vector<float> floats(to_float ? chunk_rows * row_bytes : 0);
  for (std::size_t first = lo; first < hi; first += slab) {
    const std::size_t rows = std::min(slab, hi - first);
    data.read_rows(first, rows, images, labels);
    if (to_float) {
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(images.data());
      const std::size_t total = rows * row_bytes;
      for (std::size_t at = 0; at < total; at += floats.size()) {
        const std::size_t piece = std::min(floats.size(), total - at);
        rd::scale_to_unit(std::span<const std::uint8_t>(bytes + at, piece), floats);
      }
    }
  }
  return (hi - lo) * row_bytes;
}

// Runs one epoch of `loader`; returns the stored bytes of the columns it delivered.
std::size_t epoch_bytes(rd::ShardedLoader& loader, std::uint64_t epoch) {
  loader.start_epoch(epoch);
  rd::Batch b;
  std::size_t columns = 0;
  while (loader.next(b)) columns += static_cast<std::size_t>(b.x.cols());
  return columns * loader.dataset().row_bytes();
}

// Random batches by row selection for about `budget` seconds; returns bytes delivered.
std::size_t random_batches(const rd::H5Dataset& data, std::size_t batch, double budget,
                           std::uint64_t seed) {
  std::mt19937_64 rng(seed);  // benchmark only: its exact sequence does not matter
  std::vector<std::byte> images(batch * data.row_bytes());
  std::vector<std::int32_t> labels(batch);
  std::vector<std::size_t> rows(batch);
  std::vector<rd::RowRange> ranges;
  std::size_t bytes = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < budget) {
    for (auto& row : rows) row = static_cast<std::size_t>(rng() % data.size());
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    ranges.clear();
    for (std::size_t row : rows) ranges.push_back({row, 1});
    data.read_rows(ranges, images, labels);
    bytes += rows.size() * data.row_bytes();
    rows.resize(batch);
  }
  return bytes;
}

struct Stats {
  double median, low, high;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
  // MULTIPLE: the MPI-IO loader's reader thread calls MPI-IO (see ShardedLoader).
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Multiple);
  ringdp::Communicator comm(MPI_COMM_WORLD);

  rd::SynthOptions synth;
  synth.samples = 200000;
  synth.features = 784;
  synth.classes = 10;
  synth.type = rd::ElementType::UInt8;
  synth.chunk_rows = 1024;
  std::size_t batch = 64;
  std::size_t cache_mib = 32;
  int repeats = 3;
  double random_seconds = 2.0;
  std::string dir = std::filesystem::temp_directory_path().string();
  std::string csv = "data_read.csv";
  bool keep = false;
  std::string compression = "both";
  CLI::App app{"bench-data-read: shard-mode loader vs whole-file read vs random batches"};
  app.add_option("--samples", synth.samples, "rows of the synthetic file");
  app.add_option("--features", synth.features, "uint8 values per row");
  app.add_option("--chunk-rows", synth.chunk_rows, "rows per chunk");
  app.add_option("--batch", batch, "rows per batch per rank");
  app.add_option("--cache-mib", cache_mib, "loader cache budget per rank (MiB)");
  app.add_option("--repeats", repeats, "interleaved rounds (median reported)");
  app.add_option("--random-seconds", random_seconds, "time spent on random batches per round");
  app.add_option("--dir", dir, "where the synthetic files are written");
  app.add_option("--csv", csv, "CSV output (rank 0)");
  app.add_flag("--keep", keep, "reuse existing files and keep them afterwards");
  app.add_option("--compression", compression, "which file(s): both, gzip1 or none")
      ->check(CLI::IsMember({"both", "gzip1", "none"}));
  CLI11_PARSE(app, argc, argv);

  const std::size_t cache_bytes = cache_mib << 20;
  struct Variant {
    const char* name;
    int gzip;
  };
  std::vector<Variant> variants;
  for (const Variant v : {Variant{"gzip1", 1}, Variant{"none", 0}}) {
    if (compression == "both" || compression == v.name) variants.push_back(v);
  }
  std::vector<std::string> paths;
  for (const auto& v : variants) {
    const std::string path =
        fmt::format("{}/ringdp-bench-{}x{}-{}.h5", dir, synth.samples, synth.features, v.name);
    if (!(keep && std::filesystem::exists(path))) {
      synth.gzip = v.gzip;
      const auto t = Clock::now();
      rd::synthesize(comm, path, synth);
      if (comm.rank() == 0)
        std::cerr << fmt::format("generated {} in {:.1f} s\n", path, seconds_since(t));
    }
    paths.push_back(path);
  }

  // The methods, in the order of the table. Each round runs every method on every file,
  // interleaved, so that the machine's load is spread evenly over them.
  enum Method {
    kWhole,
    kWholeFloat,
    kShard,
    kShardNext,
    kRandom,
    kWholeMpiio,
    kShardMpiio,
    kMethods
  };
  const char* names[kMethods] = {"whole-file",       "whole+float",    "shard-epoch",
                                 "shard-next-epoch", "random-batches", "whole-file/mpiio",
                                 "shard-epoch/mpiio"};
  // MPI-IO reads on the loader's thread need MPI_THREAD_MULTIPLE (asked for below).
  const bool mpiio_loader = ringdp::Environment::thread_level() == ringdp::ThreadLevel::Multiple;
  if (!mpiio_loader && comm.rank() == 0) {
    std::cerr << "warning: MPI_THREAD_MULTIPLE not provided: no shard-epoch/mpiio\n";
  }

  // results[variant][method] = throughputs in MB/s, one per round
  std::vector<std::vector<std::vector<double>>> results(variants.size(),
                                                        std::vector<std::vector<double>>(kMethods));
  auto cpu_results = results;
  // Times `fn` (which returns the bytes this rank delivered) on every rank: throughput =
  // all ranks' bytes / the slowest rank's wall time, and / all ranks' CPU seconds.
  auto measure = [&](std::size_t v, Method m, auto&& fn) {
    MPI_Barrier(comm.native());
    const auto t = Clock::now();
    const double cpu = cpu_seconds();
    const auto bytes = static_cast<double>(fn());
    const double elapsed = slowest(comm, seconds_since(t));
    const double cpu_all = total_over_ranks(comm, cpu_seconds() - cpu);
    const double all = total_over_ranks(comm, bytes);
    results[v][m].push_back(all / 1e6 / elapsed);
    cpu_results[v][m].push_back(all / 1e6 / cpu_all);
  };
  rd::SamplerOptions shard;
  shard.mode = rd::SamplingMode::Shard;
  shard.batch_size = batch;
  const rd::LoaderOptions loading{4, cache_bytes};
  rd::DatasetOptions through_mpiio;
  through_mpiio.driver = rd::IoDriver::MpiIo;

  for (int round = 0; round < repeats; ++round) {
    shard.seed = static_cast<std::uint64_t>(round);
    for (std::size_t v = 0; v < variants.size(); ++v) {
      rd::H5Dataset data(comm, paths[v]);
      const double file_mb = static_cast<double>(data.size() * data.row_bytes()) / 1e6;
      if (round == 0 && comm.rank() == 0 && static_cast<double>(cache_bytes) >= file_mb * 1e6) {
        std::cerr << "warning: the file fits the cache budget\n";
      }
      measure(v, kWhole, [&] { return whole_file(comm, data); });
      measure(v, kWholeFloat, [&] { return whole_file(comm, data, true); });
      {
        // A fresh loader (its dataset opened beforehand, as the whole-file read's is):
        // the first epoch also fills the cache budget with the chunks it reads; the next
        // epoch is what every later epoch of a run costs.
        rd::H5Dataset own(comm, paths[v]);
        std::unique_ptr<rd::ShardedLoader> loader;
        measure(v, kShard, [&] {
          loader = std::make_unique<rd::ShardedLoader>(comm, std::move(own), shard, loading);
          return epoch_bytes(*loader, 0);
        });
        measure(v, kShardNext, [&] { return epoch_bytes(*loader, 1); });
      }
      measure(v, kRandom, [&] {
        return random_batches(data, batch, random_seconds,
                              static_cast<std::uint64_t>(round * 100 + comm.rank()));
      });
      {
        rd::H5Dataset parallel(comm, paths[v], through_mpiio);
        measure(v, kWholeMpiio, [&] { return whole_file(comm, parallel); });
      }
      if (mpiio_loader) {
        rd::H5Dataset parallel(comm, paths[v], through_mpiio);
        measure(v, kShardMpiio, [&] {
          rd::ShardedLoader loader(comm, std::move(parallel), shard, loading);
          return epoch_bytes(loader, 0);
        });
      }
    }
  }

  if (comm.rank() == 0) {
    std::ofstream out(csv);
    out << "file,compression,ranks,samples,features,chunk_rows,batch,cache_mib,method,"
           "mbps_median,mbps_min,mbps_max,vs_whole_file,cpu_mbps_median,cpu_vs_whole_file\n";
    std::cout << fmt::format(
        "{} x {} uint8 ({:.0f} MB), chunks of {} rows, batch {}, cache {} MiB, "
        "{} ranks, {} rounds\n",
        synth.samples, synth.features, static_cast<double>(synth.samples * synth.features) / 1e6,
        synth.chunk_rows, batch, cache_mib, comm.size(), repeats);
    std::cout << fmt::format("{:<12} {:<18} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}\n",
                             "compression", "method", "MB/s", "min", "max", "vs whole", "MB/cpu-s",
                             "vs whole");
    for (std::size_t v = 0; v < variants.size(); ++v) {
      const Stats whole = stats(results[v][kWhole]);
      const Stats whole_cpu = stats(cpu_results[v][kWhole]);
      for (int m = 0; m < kMethods; ++m) {
        if (results[v][m].empty()) continue;
        const Stats s = stats(results[v][m]);
        const Stats c = stats(cpu_results[v][m]);
        const double ratio = s.median / whole.median;
        const double cpu_ratio = c.median / whole_cpu.median;
        std::cout << fmt::format(
            "{:<12} {:<18} {:>10.1f} {:>10.1f} {:>10.1f} {:>9.1f}% {:>12.1f} {:>9.1f}%\n",
            variants[v].name, names[m], s.median, s.low, s.high, 100 * ratio, c.median,
            100 * cpu_ratio);
        out << fmt::format("{},{},{},{},{},{},{},{},{},{:.2f},{:.2f},{:.2f},{:.4f},{:.2f},{:.4f}\n",
                           std::filesystem::path(paths[v]).filename().string(), variants[v].name,
                           comm.size(), synth.samples, synth.features, synth.chunk_rows, batch,
                           cache_mib, names[m], s.median, s.low, s.high, ratio, c.median,
                           cpu_ratio);
      }
    }
  }
  if (!keep && comm.rank() == 0) {
    for (const auto& p : paths) std::filesystem::remove(p);
  }
  return 0;
}
