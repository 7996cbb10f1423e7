// Auto: which allreduce algorithm to run for a message size and rank count.
//
// What was measured (float sum, in place, Open MPI 4.1.4 over shared memory, on the
// development machine: 2-core AMD EPYC VM, 1 MiB L2 per core; the machine was shared with
// other jobs, load average 7-13, so absolute figures are low and noisy and only the
// ordering between algorithms, interleaved in the same run, is used):
//   a small driver timing ring, rd and mpi interleaved (rotated order, 7 repetitions,
//   median of the per-iteration maximum over ranks, ~0.05 s per point) at sizes 1 KiB ..
//   16 MiB (x4), run as `mpirun -np N driver 7 ring,rd,mpi 1024 4096 ... 16777216` with
//   scripts/env.sh sourced, N = 2, 3, 4. busbw in GB/s, ring / rd / mpi:
//            N=2                  N=3
//     16K   0.32/0.43/0.30       0.14/0.22/0.13
//     64K   1.14/1.33/1.08       0.99/1.57/0.92
//    256K   2.47/2.42/2.27       2.14/1.96/1.72
//      1M   3.04/2.27/2.79       2.74/1.77/0.87
//      4M   2.05/1.14/1.76       0.71/0.59/0.77
//     16M   1.18/0.74/1.05       0.41/0.26/0.29
//   At 4 ranks (oversubscribed on 2 cores) the spread was within the noise below 4 MiB;
//   ring was ahead from 256 KiB. At 2 ranks a later run gave ring/mpi 2.9x at 128 MiB.
// So: recursive doubling (log2 p messages) below 128 KiB, where latency dominates and it
// was ahead of MPI_Allreduce at 16-64 KiB; the ring from 128 KiB, where bandwidth
// dominates and it was ahead of both from 256 KiB on. MPI_Allreduce was never clearly
// best, so Auto does not pick it. Rank counts above 4 could not be measured here: the
// same threshold is used (the ring's latency term grows with n, so on a real cluster a
// larger threshold for large n is likely better; ringdp-bench measures it).
//
// Where the machine at hand differs (an emulated or real cluster over TCP differs a lot),
// `ringdp-bench --tune FILE` measures the choice per rank count and RINGDP_TUNING=FILE
// makes Auto follow it; the collectives agree on the file first (tuning_agreement.cpp),
// so every rank decides the same.

#include <fmt/format.h>

#include "algorithms.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/error.hpp"

namespace ringdp {
namespace {

constexpr std::size_t kRingFromBytes = 128 * 1024;

}  // namespace

Algorithm select_algorithm(std::size_t bytes, int ranks, const NodeLayout& nodes) noexcept {
  if (ranks <= 1) return Algorithm::Ring;
  // One node: the shared window at every size (see allreduce_shm.cpp for what was measured).
  if (nodes.one_node()) return Algorithm::Shm;
  // Several nodes, some with several ranks: shm inside, the network between.
  if (nodes.max_size > 1) return Algorithm::Hierarchical;
  return select_algorithm(bytes, ranks);
}

Algorithm resolve_algorithm(Algorithm requested, std::size_t bytes, int ranks,
                            const NodeLayout& nodes) {
  if (requested != Algorithm::Auto) return requested;
  if (const auto& chosen = settings().algorithm) return *chosen;
  if (const TuningTable* table = tuning_from_environment()) {
    if (const auto tuned = table->algorithm(bytes, ranks)) {
      if (*tuned != Algorithm::Shm || nodes.one_node()) return *tuned;
    }
  }
  return select_algorithm(bytes, ranks, nodes);
}

Algorithm select_algorithm(std::size_t bytes, int ranks) noexcept {
  // One rank: nothing to exchange; the ring returns at once without touching the data.
  if (ranks <= 1) return Algorithm::Ring;
  return bytes < kRingFromBytes ? Algorithm::RecursiveDoubling : Algorithm::Ring;
}

Algorithm resolve_algorithm(Algorithm requested, std::size_t bytes, int ranks) {
  if (requested != Algorithm::Auto) return requested;
  if (const auto& chosen = settings().algorithm) return *chosen;
  if (const TuningTable* table = tuning_from_environment()) {
    if (const auto tuned = table->algorithm(bytes, ranks)) return *tuned;
  }
  return select_algorithm(bytes, ranks);
}

namespace detail {

Algorithm resolve_block_algorithm(Algorithm requested, int ranks, const NodeLayout& nodes,
                                  const char* what) {
  switch (requested) {
    case Algorithm::Auto:
      return ranks > 1 && nodes.one_node() ? Algorithm::Shm : Algorithm::Ring;
    case Algorithm::Shm:
      if (!nodes.one_node()) {
        throw InvalidArgument(fmt::format(
            "{}: shm needs every rank on one node, but the ranks are on {} nodes (use ring)",
            what, nodes.nodes));
      }
      return requested;
    case Algorithm::Ring:
    case Algorithm::Mpi:
      return requested;
    default:
      break;
  }
  throw InvalidArgument(fmt::format("{} runs ring, shm, mpi or auto, not {}", what,
                                    to_string(requested)));
}

}  // namespace detail
}  // namespace ringdp
