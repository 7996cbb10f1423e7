#include "ringdp/parallel/full_arena.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/error.hpp"

namespace ringdp::parallel {
namespace {

// The elements rank (stage, t) is the source of: all of its own, and the replicated ones
// only on tensor rank 0, so that every unsplit element has exactly one source.
std::size_t owned_count(const std::vector<ArenaRun>& runs, int tensor_rank) {
  std::size_t n = 0;
  for (const ArenaRun& run : runs) {
    if (!run.replicated || tensor_rank == 0) n += run.count;
  }
  return n;
}

void check_sizes(const MlpLayout& layout, int stage, int tensor_rank, std::size_t local,
                 std::size_t full, const char* what) {
  const std::size_t want_local = layout.parameter_count(stage, tensor_rank);
  if (local != want_local || full != layout.full_parameter_count()) {
    throw InvalidArgument(fmt::format(
        "{}: {} local / {} full elements, the layout needs {} / {} (stage {}, tensor rank {})",
        what, local, full, want_local, layout.full_parameter_count(), stage, tensor_rank));
  }
}

}  // namespace

template <std::floating_point T>
void gather_full(const Grid& grid, const MlpLayout& layout, std::span<const T> local,
                 std::span<T> full) {
  if (layout.tensor() != grid.tensor_size() || layout.pipeline() != grid.pipeline_size()) {
    throw InvalidArgument(fmt::format("gather_full: a layout for tensor {} x pipeline {} on a {}",
                                      layout.tensor(), layout.pipeline(), grid.describe()));
  }
  const GridCoordinates at = grid.coordinates();
  check_sizes(layout, at.pipeline, at.tensor, local.size(), full.size(), "gather_full");
  // Every rank packs the elements it is the source of into a block of the largest such
  // count (the sizes differ: uneven splits, replicated pieces), one allgather moves the
  // blocks, and every rank unpacks each block with that rank's runs, which it computes
  // from the layout alone. Copies only: the gathered bits are the ranks' bits.
  const int ranks = grid.model().size();
  std::size_t block = 0;
  for (int r = 0; r < ranks; ++r) {
    const int t = r % layout.tensor();
    block = std::max(block, owned_count(layout.arena_runs(r / layout.tensor(), t), t));
  }
  std::vector<T> mine(block, T(0));
  std::size_t packed = 0;
  for (const ArenaRun& run : layout.arena_runs(at.pipeline, at.tensor)) {
    if (run.replicated && at.tensor != 0) continue;
    std::copy_n(local.begin() + static_cast<std::ptrdiff_t>(run.local_offset), run.count,
                mine.begin() + static_cast<std::ptrdiff_t>(packed));
    packed += run.count;
  }
  std::vector<T> all(block * static_cast<std::size_t>(ranks));
  allgather<T>(grid.model(), mine, all);
  // Model-group rank r is tensor rank r % T of stage r / T (Grid's order).
  for (int r = 0; r < ranks; ++r) {
    const int t = r % layout.tensor();
    auto from = all.begin() + static_cast<std::ptrdiff_t>(block * static_cast<std::size_t>(r));
    for (const ArenaRun& run : layout.arena_runs(r / layout.tensor(), t)) {
      if (run.replicated && t != 0) continue;
      std::copy_n(from, run.count, full.begin() + static_cast<std::ptrdiff_t>(run.full_offset));
      from += static_cast<std::ptrdiff_t>(run.count);
    }
  }
}

template <std::floating_point T>
void scatter_full(const MlpLayout& layout, int stage, int tensor_rank, std::span<const T> full,
                  std::span<T> local) {
  check_sizes(layout, stage, tensor_rank, local.size(), full.size(), "scatter_full");
  for (const ArenaRun& run : layout.arena_runs(stage, tensor_rank)) {
    std::copy_n(full.begin() + static_cast<std::ptrdiff_t>(run.full_offset), run.count,
                local.begin() + static_cast<std::ptrdiff_t>(run.local_offset));
  }
}

template void gather_full<float>(const Grid&, const MlpLayout&, std::span<const float>,
                                 std::span<float>);
template void gather_full<double>(const Grid&, const MlpLayout&, std::span<const double>,
                                  std::span<double>);
template void scatter_full<float>(const MlpLayout&, int, int, std::span<const float>,
                                  std::span<float>);
template void scatter_full<double>(const MlpLayout&, int, int, std::span<const double>,
                                   std::span<double>);

}  // namespace ringdp::parallel
