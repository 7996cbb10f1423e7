#include "threads.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <vector>

#include "ringdp/comm/mpi_check.hpp"

namespace ringdp_train {
namespace {

// One rank's layout: compute threads, CPUs it may run on, CPUs its host has online.
struct RankThreads {
  int rank = 0;
  std::string host;
  int threads = 1;
  int cpus = 1;
  int host_cpus = 1;
};

std::vector<RankThreads> gather_layout(const ringdp::Communicator& comm,
                                       const ringdp::nn::CoreBudget& cores) {
  std::vector<char> name(MPI_MAX_PROCESSOR_NAME, '\0');
  int length = 0;
  RINGDP_MPI_CHECK(MPI_Get_processor_name(name.data(), &length));
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  const std::array<int, 3> mine = {cores.compute_threads, cores.cpus,
                                   online > 0 ? static_cast<int>(online) : 1};
  const auto ranks = static_cast<std::size_t>(comm.size());
  std::vector<char> names(name.size() * ranks);
  std::vector<int> counts(mine.size() * ranks);
  RINGDP_MPI_CHECK(MPI_Allgather(name.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(),
                                 MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm.native()));
  RINGDP_MPI_CHECK(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT, counts.data(),
                                 static_cast<int>(mine.size()), MPI_INT, comm.native()));
  std::vector<RankThreads> layout(ranks);
  for (std::size_t r = 0; r < ranks; ++r) {
    layout[r] = {static_cast<int>(r), std::string(names.data() + r * MPI_MAX_PROCESSOR_NAME),
                 counts[3 * r], counts[3 * r + 1], counts[3 * r + 2]};
  }
  return layout;
}

// "rank 3" or "ranks 0,1,...".
std::string ranks_text(const std::vector<int>& ranks) {
  std::string text;
  for (std::size_t i = 0; i < ranks.size() && i < 8; ++i)
    text += fmt::format("{}{}", i ? "," : "", ranks[i]);
  if (ranks.size() > 8) text += ",...";
  return fmt::format("rank{} {}", ranks.size() > 1 ? "s" : "", text);
}

}  // namespace

void report_thread_layout(const ringdp::Communicator& comm, const ringdp::train::Trainer& trainer,
                          Console& out) {
  const std::vector<RankThreads> layout = gather_layout(comm, trainer.cores());
  if (comm.rank() != 0) return;
  const RankThreads& first = layout.front();
  const bool threaded =
      std::any_of(layout.begin(), layout.end(), [](const RankThreads& r) { return r.threads > 1; });
  if (threaded) {
    out.line(fmt::format("  threads     {} compute threads per rank, {} CPU{} per rank (rank 0)",
                         first.threads, first.cpus, first.cpus == 1 ? "" : "s"));
  }
  std::vector<int> narrow;
  for (const RankThreads& r : layout) {
    if (r.threads > r.cpus) narrow.push_back(r.rank);
  }
  if (!narrow.empty()) {
    const RankThreads& r = layout[static_cast<std::size_t>(narrow.front())];
    out.always(fmt::format(
        "warning: {} run {} compute threads on {} CPU{} each: bind each rank to as many CPUs "
        "as threads (mpirun --map-by socket:PE={} or --bind-to none; srun -c {})",
        ranks_text(narrow), r.threads, r.cpus, r.cpus == 1 ? "" : "s", r.threads, r.threads));
  }
  std::map<std::string, std::array<int, 3>> hosts;  // ranks, threads, CPUs online
  for (const RankThreads& r : layout) {
    auto& h = hosts[r.host];
    h = {h[0] + 1, h[1] + r.threads, r.host_cpus};
  }
  for (const auto& [host, h] : hosts) {
    if (h[1] <= h[2]) continue;
    out.always(fmt::format(
        "warning: host {}: {} ranks x their compute threads = {} threads on {} CPUs: the cores "
        "are oversubscribed; lower --threads or the ranks per host",
        host, h[0], h[1], h[2]));
  }
}

}  // namespace ringdp_train
