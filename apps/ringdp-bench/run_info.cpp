#include "run_info.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "common/utc_time.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/version.hpp"

namespace ringdp::bench {
namespace {

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return trim(line.substr(colon + 1));
    }
  }
  return "unknown";
}

std::size_t mem_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::size_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// The CPUs this process may run on. mpirun usually binds each rank to one core, so a
// host's CPU count is the union of its ranks' masks, not any one rank's mask.
cpu_set_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) CPU_ZERO(&set);
  return set;
}

}  // namespace

RunInfo collect_run_info(const Communicator& comm) {
  RunInfo info;
  info.ranks = comm.size();

  // Every rank contributes its host name and CPU mask; fixed-size records keep it one
  // MPI_Allgather.
  struct Record {
    char name[MPI_MAX_PROCESSOR_NAME];
    cpu_set_t cpus;
  };
  Record mine{};
  int length = 0;
  RINGDP_MPI_CHECK(MPI_Get_processor_name(mine.name, &length));
  mine.cpus = usable_cpus();
  std::vector<Record> all(static_cast<std::size_t>(comm.size()));
  std::vector<cpu_set_t> masks;  // per host, the union of its ranks' masks
  RINGDP_MPI_CHECK(MPI_Allgather(&mine, sizeof(Record), MPI_BYTE, all.data(), sizeof(Record),
                                 MPI_BYTE, comm.native()));
  for (const Record& record : all) {
    const std::string name(record.name, strnlen(record.name, sizeof record.name));
    auto it = std::find_if(info.hosts.begin(), info.hosts.end(),
                           [&](const HostInfo& h) { return h.name == name; });
    if (it == info.hosts.end()) {
      info.hosts.push_back({name, 1, 0});
      masks.push_back(record.cpus);
    } else {
      ++it->ranks;
      cpu_set_t& mask = masks[static_cast<std::size_t>(it - info.hosts.begin())];
      CPU_OR(&mask, &mask, &record.cpus);
    }
  }
  for (std::size_t h = 0; h < info.hosts.size(); ++h) info.hosts[h].cpus = CPU_COUNT(&masks[h]);
  const std::string my_name(mine.name, strnlen(mine.name, sizeof mine.name));
  for (const HostInfo& host : info.hosts) {
    if (host.cpus > 0 && host.ranks > host.cpus) info.oversubscribed = true;
    if (host.name == my_name) info.ranks_on_my_host = host.ranks;
  }

  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int version_length = 0;
  RINGDP_MPI_CHECK(MPI_Get_library_version(version, &version_length));
  // The length Open MPI returns counts the terminating NUL: measure the text instead.
  std::string library(version, strnlen(version, static_cast<std::size_t>(version_length)));
  info.mpi_library = trim(library.substr(0, library.find('\n')));

  info.ringdp_version = RINGDP_VERSION_STRING;
  info.git_hash = RINGDP_GIT_HASH;
  info.cpu_model = cpu_model();
  info.date_utc = apps::utc_now();
  info.mem_available = mem_available_bytes();
  return info;
}

std::string describe_placement(const RunInfo& info) {
  std::string hosts;
  for (const HostInfo& host : info.hosts) {
    if (!hosts.empty()) hosts += "; ";
    hosts += fmt::format("{}: {} rank{}, {} CPU{}", host.name, host.ranks,
                         host.ranks == 1 ? "" : "s", host.cpus, host.cpus == 1 ? "" : "s");
  }
  return fmt::format("{} rank{} on {} host{} ({}){}", info.ranks, info.ranks == 1 ? "" : "s",
                     info.hosts.size(), info.hosts.size() == 1 ? "" : "s", hosts,
                     info.oversubscribed
                         ? ", OVERSUBSCRIBED: more ranks than CPUs, timings include time-sharing"
                         : "");
}

}  // namespace ringdp::bench
