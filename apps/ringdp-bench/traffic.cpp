#include "traffic.hpp"

#include <bit>

namespace ringdp::bench {
namespace {

// log2 of the largest power of two <= n, and the ranks beyond it (recursive doubling folds
// those into their neighbours first and hands the result back at the end).
struct Doubling {
  std::uint64_t rounds;
  std::uint64_t extra;
};
Doubling doubling(int ranks) {
  const auto n = static_cast<std::uint64_t>(ranks);
  const std::uint64_t p = std::bit_floor(n);
  return {static_cast<std::uint64_t>(std::countr_zero(p)), n - p};
}

// The shared window's staged path, per rank and per byte of the buffer: copy in of the
// pieces other owners reduce (read the buffer, write staging: 2(p-1)/p), the owner's
// reduction (read p pieces of N/p, write N/p into the buffer and N/p into its result area),
// copy out of the others' results (read, write the buffer: 2(p-1)/p): 5 - 2/p; with
// SharedBuffers only the reduction, writing the result to every rank: 2.
double shm_per_rank(int p, bool shared) { return shared ? 2.0 : 5.0 - 2.0 / p; }

}  // namespace

std::uint64_t floor_traffic(std::size_t bytes, int ranks) {
  return 2 * static_cast<std::uint64_t>(ranks) * bytes;
}

std::optional<std::uint64_t> memory_traffic(Algorithm algorithm, std::size_t bytes, int ranks,
                                            const NodeLayout& nodes, bool shared) {
  const double n = static_cast<double>(bytes);
  const double p = ranks;
  if (ranks <= 1) return 0;
  double total = 0;
  switch (algorithm) {
    case Algorithm::Ring:
      // 2(p-1) steps of N/p per rank: the sender's copy into the transport (read, write),
      // the receiver's copy out (read, write); in the p-1 reduce-scatter steps the copy out
      // goes to a scratch slot and the reduction reads it and the buffer and writes the
      // buffer (3 more). Per rank 11(p-1)N/p.
      total = p * 11.0 * (p - 1) * n / p;
      break;
    case Algorithm::RecursiveDoubling: {
      // Per round and rank: copy in and out of the transport (4N), reduce (read 2N,
      // write N); folded ranks add one such exchange, and one plain transfer back (4N).
      const Doubling d = doubling(ranks);
      total = (p - static_cast<double>(d.extra)) * 7.0 * n * static_cast<double>(d.rounds) +
              static_cast<double>(d.extra) * (7.0 + 4.0) * n;
      break;
    }
    case Algorithm::ParameterServer:
      // p-1 buffers to the server (4N each through the transport, plus its reduction 3N),
      // then a broadcast of N to p-1 ranks (4N each).
      total = (p - 1) * (4.0 + 3.0 + 4.0) * n;
      break;
    case Algorithm::Shm:
      total = p * shm_per_rank(ranks, shared) * n;
      break;
    case Algorithm::Hierarchical: {
      if (nodes.one_node()) return memory_traffic(Algorithm::Shm, bytes, ranks, nodes, shared);
      // Inside each node a reduce-scatter and an allgather through the window (staged: copy
      // in, reduce, copy to the owner's buffer; publish, copy out), then a ring of one rank
      // per node on each slice: 11(m-1)N/m per node over the m nodes.
      const double m = nodes.nodes;
      total = p * 6.0 * n + 11.0 * (m - 1) * n;
      break;
    }
    case Algorithm::Mpi:
    case Algorithm::Auto:
      return std::nullopt;
  }
  return static_cast<std::uint64_t>(total);
}

}  // namespace ringdp::bench
