#pragma once
// Model parallelism in the app (--tp, --pp, --micro-batches): the grid of the job, and
// what the header says of it (the groups, their bytes per step, the memory of a rank).

#include <memory>
#include <string>
#include <vector>

#include "options.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/train/trainer.hpp"
#include "setup.hpp"

namespace ringdp_train {

/// Collective: the data x tensor x pipeline grid of --tp and --pp over `world` (the same
/// InvalidArgument on every rank when they do not divide the rank count), or null for
/// --tp 1 --pp 1: plain data parallelism over `world`, exactly as without the flags.
[[nodiscard]] std::unique_ptr<ringdp::parallel::Grid> make_grid(const ringdp::Communicator& world,
                                                                const Options& o);

/// Collective over `world`: the header lines of the layout: the grid, the bytes a rank
/// sends per step in each group (the busiest rank's, from the cost model of
/// parallel/traffic.hpp; the data group's over the trainer's actual buckets), and the
/// parameter + optimizer state bytes of the largest rank. `grid` may be null.
[[nodiscard]] std::vector<std::string> parallelism_lines(const ringdp::Communicator& world,
                                                         const Options& o,
                                                         const ringdp::parallel::Grid* grid,
                                                         Model& model,
                                                         const ringdp::train::Trainer& trainer);

}  // namespace ringdp_train
