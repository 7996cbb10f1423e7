#pragma once
// The measurement: for each message size, every algorithm is checked against
// PMPI_Allreduce and then timed, interleaved with the others.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "options.hpp"
#include "ringdp/types.hpp"
#include "ringdp/comm/communicator.hpp"
#include "stats.hpp"

namespace ringdp::bench {

/// One line of the table: one algorithm at one message size.
struct Row {
  std::size_t bytes = 0;
  std::size_t count = 0;
  Algorithm algorithm = Algorithm::Auto;  // as requested on the command line
  Algorithm runs = Algorithm::Auto;       // what allreduce resolved it to (differs for auto)
  Spread time_us;  // over iterations, of the slowest rank's time of that iteration
  int iterations = 0;
  std::uint64_t wrong = 0;  // elements differing from PMPI_Allreduce, summed over ranks
  // The memory floor at this size, measured in the same interleaved blocks (traffic.hpp):
  // the slowest rank's median time to read and write its buffer in place, all ranks at
  // once; 0 when not measured (--no-floor).
  double floor_us = 0;
  // Bytes this algorithm reads and writes through memory per call, all ranks together
  // (traffic.hpp's model); nullopt where the model has none (mpi).
  std::optional<std::uint64_t> traffic_bytes;
};

/// Collective: measures every size of `options` and calls `on_size` (on every rank) with
/// the rows of each size as soon as it is done, in the order of options.algorithms.
/// Returns all rows. Every rank returns the same rows (all statistics are reduced).
std::vector<Row> run_benchmark(const Communicator& comm, const Options& options,
                               const std::function<void(std::span<const Row>)>& on_size);

/// Bytes each rank allocates for a run: the working buffer (in the node's shared window
/// with --shared), a copy of the input and the reference, each of max_bytes, plus the
/// full-size scratch recursive doubling and the parameter server keep on the communicator.
std::size_t bytes_needed_per_rank(const Options& options);

}  // namespace ringdp::bench
