#pragma once
// The measurement: for each message size, every algorithm is checked against
// PMPI_Allreduce and then timed, interleaved with the others.

#include <cstddef>
#include <cstdint>
#include <functional>
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
};

/// Collective: measures every size of `options` and calls `on_size` (on every rank) with
/// the rows of each size as soon as it is done, in the order of options.algorithms.
/// Returns all rows. Every rank returns the same rows (all statistics are reduced).
std::vector<Row> run_benchmark(const Communicator& comm, const Options& options,
                               const std::function<void(std::span<const Row>)>& on_size);

/// Bytes each rank allocates for a run: the working buffer, a copy of the input and the
/// reference, each of max_bytes, plus the full-size scratch recursive doubling and the
/// parameter server keep on the communicator.
std::size_t bytes_needed_per_rank(const Options& options);

}  // namespace ringdp::bench
