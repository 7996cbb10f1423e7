#pragma once
// Where and with what a run was made: the header of the JSON file and of the table.

#include <cstddef>
#include <string>
#include <vector>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::bench {

struct HostInfo {
  std::string name;
  int ranks = 0;  // ranks of the job on this host
  int cpus = 0;   // CPUs the ranks on this host may run on (union of their affinity masks)
};

struct RunInfo {
  int ranks = 0;
  std::vector<HostInfo> hosts;  // in order of first appearance by rank
  bool oversubscribed = false;  // some host runs more ranks than it has CPUs
  std::string mpi_library;      // MPI_Get_library_version, first line
  std::string ringdp_version;
  std::string git_hash;
  std::string cpu_model;          // "model name" of /proc/cpuinfo on rank 0
  std::string date_utc;           // ISO 8601, on rank 0 at the start of the run
  std::size_t mem_available = 0;  // MemAvailable of this rank's host, bytes (0 if unknown)
  int ranks_on_my_host = 0;
};

/// Collective: gathers host names and CPU counts from every rank; the rest is local.
/// Every rank returns the same fields except mem_available and ranks_on_my_host.
RunInfo collect_run_info(const Communicator& comm);

/// One line: "2 ranks on 1 host (box: 2 ranks, 2 CPUs)", with ", OVERSUBSCRIBED" when
/// a host runs more ranks than it has CPUs.
std::string describe_placement(const RunInfo& info);

}  // namespace ringdp::bench
