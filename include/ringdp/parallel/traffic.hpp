#pragma once
/// \file
/// The cost model of model parallelism in bytes: what each allreduce algorithm sends per
/// rank, and what a layout's tensor and pipeline groups send per training step. The
/// measurements of bench/parallelism compare counted bytes with these formulas.

#include <cstddef>

#include "ringdp/comm/node.hpp"
#include "ringdp/parallel/mlp_layout.hpp"
#include "ringdp/types.hpp"

namespace ringdp::parallel {

/// Bytes one rank sends in one allreduce.
struct RankBytes {
  double mean = 0.0;  ///< averaged over the ranks
  double max = 0.0;   ///< of the busiest rank
};

/// What ringdp's allreduce of `bytes` bytes over `ranks` ranks sends, by algorithm:
/// - Ring: 2 (n - 1) / n x N on every rank (reduce-scatter and allgather, n - 1 chunks
///   of about N / n each);
/// - RecursiveDoubling: with p the largest power of two <= n and e = n - p, the p ranks
///   of the doubling send log2(p) x N, and the 2e ranks that fold in and out send N
///   each: mean (p log2 p + 2e) / n x N;
/// - ParameterServer: every worker sends N to the server, which broadcasts the result
///   (MPI's broadcast: (n - 1) x N bytes in all, whatever its tree): mean 2 (n - 1) / n x
///   N, like the ring, but the server's link carries (n - 1) x N in (max);
/// - Shm: nothing (the ranks of one node meet in its shared window);
/// - Hierarchical: depends on the node layout, not modelled (NaN);
/// - Mpi: MPI's own choice, not modelled (NaN); Auto: resolve it first (resolve_algorithm()).
/// Zero for one rank or zero bytes. Local.
[[nodiscard]] RankBytes allreduce_bytes_sent(Algorithm algorithm, std::size_t bytes, int ranks);

/// Bytes one rank of a stage sends per training step in its tensor and pipeline groups.
struct StepTraffic {
  double tensor = 0.0;        ///< activation allreduces (mean over the tensor group)
  double pipeline = 0.0;      ///< activations forward and their gradients back
  int tensor_allreduces = 0;  ///< allreduces per step in the tensor group
};

/// The tensor and pipeline bytes a rank of `stage` sends per step for a batch of
/// `batch` samples per model replica, in elements of `element_bytes` bytes:
/// - tensor group: each row-parallel layer allreduces its output (outputs x batch) in
///   forward and each column-parallel layer its input gradient (inputs x batch) in
///   backward, except the model's first layer, whose input gradient nobody needs; each
///   allreduce as allreduce_bytes_sent() for `algorithm` resolved like ringdp::allreduce
///   does (Auto: RINGDP_ALGORITHM, the tuning file, or the built-in choice by size and,
///   given `tensor_nodes` (the tensor group's Communicator::node_layout()), by how its
///   ranks share nodes: shm on one node, which sends no message);
/// - pipeline group: a stage sends its output (stage_outputs x batch) forward unless it
///   is the last, and its input's gradient (stage_inputs x batch) back unless it is the
///   first, whatever the micro-batch count.
/// Local.
[[nodiscard]] StepTraffic step_traffic(const MlpLayout& layout, int stage, std::size_t batch,
                                       std::size_t element_bytes = sizeof(float),
                                       Algorithm algorithm = Algorithm::Auto,
                                       const NodeLayout* tensor_nodes = nullptr);

}  // namespace ringdp::parallel
