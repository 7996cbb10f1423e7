#include "counters.hpp"

#include <mpi.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "settings.hpp"

namespace ringdp::interpose {
namespace {

enum Field { kServedCalls, kServedBytes, kPassedCalls, kPassedBytes, kFields };

std::array<std::atomic<std::uint64_t>, kFields> counts{};

void add(Field calls, Field bytes, std::size_t n) noexcept {
  counts[calls].fetch_add(1, std::memory_order_relaxed);
  counts[bytes].fetch_add(n, std::memory_order_relaxed);
}

void print_totals(const std::vector<std::uint64_t>& all, int ranks) {
  std::array<std::uint64_t, kFields> total{};
  for (int r = 0; r < ranks; ++r) {
    for (int f = 0; f < kFields; ++f) total[f] += all[static_cast<std::size_t>(r) * kFields + f];
  }
  std::fprintf(stderr,
               "ringdp interpose: MPI_Allreduce over %d rank%s: served by ringdp %llu calls "
               "(%llu bytes), passed to MPI %llu calls (%llu bytes); totals over all ranks, "
               "RINGDP_INTERPOSE_MIN_BYTES=%zu\n",
               ranks, ranks == 1 ? "" : "s", static_cast<unsigned long long>(total[kServedCalls]),
               static_cast<unsigned long long>(total[kServedBytes]),
               static_cast<unsigned long long>(total[kPassedCalls]),
               static_cast<unsigned long long>(total[kPassedBytes]), settings().min_bytes);
}

bool write_stats(const std::string& path, const std::vector<std::uint64_t>& all, int ranks) {
  // A temporary name then rename: a reader never sees a half-written file.
  const std::string temporary = path + ".tmp";
  std::FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) return false;
  bool ok = std::fprintf(file, "# rank served_calls served_bytes passed_calls passed_bytes\n") > 0;
  for (int r = 0; r < ranks && ok; ++r) {
    const std::uint64_t* f = &all[static_cast<std::size_t>(r) * kFields];
    ok = std::fprintf(file, "%d %llu %llu %llu %llu\n", r,
                      static_cast<unsigned long long>(f[kServedCalls]),
                      static_cast<unsigned long long>(f[kServedBytes]),
                      static_cast<unsigned long long>(f[kPassedCalls]),
                      static_cast<unsigned long long>(f[kPassedBytes])) > 0;
  }
  ok = std::fclose(file) == 0 && ok;
  return ok && std::rename(temporary.c_str(), path.c_str()) == 0;
}

}  // namespace

void count_served(std::size_t bytes) noexcept { add(kServedCalls, kServedBytes, bytes); }
void count_passed(std::size_t bytes) noexcept { add(kPassedCalls, kPassedBytes, bytes); }

void report_counts() noexcept {
  try {
    const Settings& s = settings();
    // Ranks could in principle see different environments; agreeing first means a rank
    // with the report switched on never waits in a gather the others skip.
    int wanted = s.verbose || !s.stats_path.empty() ? 1 : 0;
    if (PMPI_Allreduce(MPI_IN_PLACE, &wanted, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS ||
        wanted == 0) {
      return;
    }
    int rank = 0;
    int ranks = 1;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    PMPI_Comm_size(MPI_COMM_WORLD, &ranks);
    std::array<std::uint64_t, kFields> mine{};
    for (int f = 0; f < kFields; ++f) mine[f] = counts[f].load(std::memory_order_relaxed);
    std::vector<std::uint64_t> all(rank == 0 ? static_cast<std::size_t>(ranks) * kFields : 0);
    if (PMPI_Gather(mine.data(), kFields, MPI_UINT64_T, all.data(), kFields, MPI_UINT64_T, 0,
                    MPI_COMM_WORLD) != MPI_SUCCESS ||
        rank != 0) {
      return;
    }
    if (s.verbose) print_totals(all, ranks);
    if (!s.stats_path.empty() && !write_stats(s.stats_path, all, ranks)) {
      std::fprintf(stderr, "ringdp interpose: rank 0: cannot write RINGDP_INTERPOSE_STATS=%s\n",
                   s.stats_path.c_str());
    }
  } catch (...) {
    std::fprintf(stderr, "ringdp interpose: could not report the MPI_Allreduce counts\n");
  }
}

}  // namespace ringdp::interpose
