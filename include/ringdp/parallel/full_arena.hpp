#pragma once
/// \file
/// A model split over a grid, seen whole: the unsplit parameter arena (and any array laid
/// out like it, such as optimizer state) gathered from a replica's ranks, and a rank's
/// part taken back out of it. Checkpoints store the unsplit arena, so a run saved under
/// one layout resumes under any other.

#include <concepts>
#include <span>

#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/mlp_layout.hpp"

namespace ringdp::parallel {

/// For T = float or double. Collective over grid.model() (the ranks of one model replica; the other
/// replicas gather their own copies at the same time if they call it too). `local` is this rank's
/// arena (or an array laid out like it: MlpLayout::parameter_count() elements for its
/// stage and tensor rank); on return `full` (full_parameter_count() elements) holds the
/// unsplit arena on every rank of the replica, copied, not computed: the same bits as the
/// ranks hold. Replicated elements are taken from tensor rank 0. `layout` must be the
/// grid's (same tensor and pipeline sizes; InvalidArgument otherwise, and on wrong sizes).
template <std::floating_point T>
void gather_full(const Grid& grid, const MlpLayout& layout, std::span<const T> local,
                 std::span<T> full);

/// Local: copies the part of the unsplit arena `full` held by `stage`, `tensor_rank` into
/// `local`. InvalidArgument on wrong sizes.
template <std::floating_point T>
void scatter_full(const MlpLayout& layout, int stage, int tensor_rank, std::span<const T> full,
                  std::span<T> local);

}  // namespace ringdp::parallel
