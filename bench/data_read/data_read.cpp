// bench-data-read: how fast a shuffled epoch of the shard-mode loader reads a file larger
// than its cache budget, next to a plain whole-file read and to naive random batches.
//
//   mpirun -np P bench-data-read [--samples 200000 --features 784 --chunk-rows 1024 ...]
//
// For each file (gzip level 1, and uncompressed), interleaved over --repeats rounds:
//   whole-file  each rank reads its contiguous 1/P of the rows in slabs of 8 chunks
//   whole+float the same, each slab also scaled to floats in file order (no shuffle)
//   shard       a fresh ShardedLoader (shard mode, --cache-mib budget) runs one shuffled
//               epoch, batches of --batch rows, converted to floats as the trainer gets them
//   random      batches of --batch random rows, each batch one HDF5 row selection (what
//               global mode does without a cache), for --random-seconds, extrapolated
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
// `to_float`, each slab is also scaled to floats in file order (v / 255.0f), the output the
// loader produces, but without shuffling: the cost of the conversion alone.
std::size_t whole_file(const ringdp::Communicator& comm, const rd::H5Dataset& data,
                       bool to_float = false) {
  const std::size_t n = data.size();
  const auto p = static_cast<std::size_t>(comm.size());
  const auto r = static_cast<std::size_t>(comm.rank());
  const std::size_t chunks = data.chunks();
  const std::size_t lo = std::min(n, chunks * r / p * data.chunk_rows());
  const std::size_t hi = std::min(n, chunks * (r + 1) / p * data.chunk_rows());
  const std::size_t slab = 8 * data.chunk_rows();
  std::vector<std::byte> images(slab * data.row_bytes());
  std::vector<std::int32_t> labels(slab);
  std::vector<float> floats(to_float ? images.size() : 0);
  float table[256];
  for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(v) / 255.0f;
  for (std::size_t first = lo; first < hi; first += slab) {
    const std::size_t rows = std::min(slab, hi - first);
    data.read_rows(first, rows, images, labels);
    if (to_float) {
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(images.data());
      for (std::size_t i = 0; i < rows * data.row_bytes(); ++i) floats[i] = table[bytes[i]];
    }
  }
  return (hi - lo) * data.row_bytes();
}

std::size_t shard_epoch(const ringdp::Communicator& comm, const std::string& path,
                        std::size_t batch, std::size_t cache_bytes, std::uint64_t seed) {
  rd::SamplerOptions s;
  s.mode = rd::SamplingMode::Shard;
  s.batch_size = batch;
  s.seed = seed;
  rd::ShardedLoader loader(comm, rd::H5Dataset(comm, path), s, {4, cache_bytes});
  loader.start_epoch(0);
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
  ringdp::Environment env(argc, argv);
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
  CLI11_PARSE(app, argc, argv);

  const std::size_t cache_bytes = cache_mib << 20;
  struct Variant {
    const char* name;
    int gzip;
  };
  const std::vector<Variant> variants{{"gzip1", 1}, {"none", 0}};
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

  // results[variant][method] = throughputs in MB/s, one per round
  std::vector<std::vector<std::vector<double>>> results(variants.size(),
                                                        std::vector<std::vector<double>>(4));
  auto cpu_results = results;
  for (int round = 0; round < repeats; ++round) {
    for (std::size_t v = 0; v < variants.size(); ++v) {
      rd::H5Dataset data(comm, paths[v]);
      const double file_mb = static_cast<double>(data.size() * data.row_bytes()) / 1e6;
      if (round == 0 && comm.rank() == 0 && static_cast<double>(cache_bytes) >= file_mb * 1e6) {
        std::cerr << "warning: the file fits the cache budget\n";
      }
      MPI_Barrier(comm.native());
      auto t = Clock::now();
      double cpu = cpu_seconds();
      whole_file(comm, data);
      results[v][0].push_back(file_mb / slowest(comm, seconds_since(t)));
      cpu_results[v][0].push_back(file_mb / total_over_ranks(comm, cpu_seconds() - cpu));

      MPI_Barrier(comm.native());
      t = Clock::now();
      cpu = cpu_seconds();
      whole_file(comm, data, true);
      results[v][3].push_back(file_mb / slowest(comm, seconds_since(t)));
      cpu_results[v][3].push_back(file_mb / total_over_ranks(comm, cpu_seconds() - cpu));

      MPI_Barrier(comm.native());
      t = Clock::now();
      cpu = cpu_seconds();
      shard_epoch(comm, paths[v], batch, cache_bytes, static_cast<std::uint64_t>(round));
      results[v][1].push_back(file_mb / slowest(comm, seconds_since(t)));
      cpu_results[v][1].push_back(file_mb / total_over_ranks(comm, cpu_seconds() - cpu));

      MPI_Barrier(comm.native());
      t = Clock::now();
      cpu = cpu_seconds();
      const std::size_t bytes = random_batches(
          data, batch, random_seconds, static_cast<std::uint64_t>(round * 100 + comm.rank()));
      const double elapsed = slowest(comm, seconds_since(t));
      double total = static_cast<double>(bytes);
      double all = 0;
      MPI_Allreduce(&total, &all, 1, MPI_DOUBLE, MPI_SUM, comm.native());
      results[v][2].push_back(all / 1e6 / elapsed);
      cpu_results[v][2].push_back(all / 1e6 / total_over_ranks(comm, cpu_seconds() - cpu));
    }
  }

  if (comm.rank() == 0) {
    const char* methods[4] = {"whole-file", "shard-epoch", "random-batches", "whole+float"};
    std::ofstream out(csv);
    out << "file,compression,ranks,samples,features,chunk_rows,batch,cache_mib,method,"
           "mbps_median,mbps_min,mbps_max,vs_whole_file,cpu_mbps_median,cpu_vs_whole_file\n";
    std::cout << fmt::format(
        "{} x {} uint8 ({:.0f} MB), chunks of {} rows, batch {}, cache {} MiB, "
        "{} ranks, {} rounds\n",
        synth.samples, synth.features, static_cast<double>(synth.samples * synth.features) / 1e6,
        synth.chunk_rows, batch, cache_mib, comm.size(), repeats);
    std::cout << fmt::format("{:<12} {:<16} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}\n",
                             "compression", "method", "MB/s", "min", "max", "vs whole", "MB/cpu-s",
                             "vs whole");
    for (std::size_t v = 0; v < variants.size(); ++v) {
      const Stats whole = stats(results[v][0]);
      const Stats whole_cpu = stats(cpu_results[v][0]);
      for (int m : {0, 3, 1, 2}) {
        const Stats s = stats(results[v][static_cast<std::size_t>(m)]);
        const Stats c = stats(cpu_results[v][static_cast<std::size_t>(m)]);
        const double ratio = s.median / whole.median;
        const double cpu_ratio = c.median / whole_cpu.median;
        std::cout << fmt::format(
            "{:<12} {:<16} {:>10.1f} {:>10.1f} {:>10.1f} {:>9.1f}% {:>12.1f} {:>9.1f}%\n",
            variants[v].name, methods[m], s.median, s.low, s.high, 100 * ratio, c.median,
            100 * cpu_ratio);
        out << fmt::format("{},{},{},{},{},{},{},{},{},{:.2f},{:.2f},{:.2f},{:.4f},{:.2f},{:.4f}\n",
                           std::filesystem::path(paths[v]).filename().string(), variants[v].name,
                           comm.size(), synth.samples, synth.features, synth.chunk_rows, batch,
                           cache_mib, methods[m], s.median, s.low, s.high, ratio, c.median,
                           cpu_ratio);
      }
    }
  }
  if (!keep && comm.rank() == 0) {
    for (const auto& p : paths) std::filesystem::remove(p);
  }
  return 0;
}
