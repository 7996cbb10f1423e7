#pragma once
// The verdict on a training step once its sums are reduced: a failed batch, an announced
// real count that the batches do not hold, a non-finite loss or averaged gradient. Every
// input is the same on every rank (reduced sums, averaged bits), so is every verdict.
// Private to the library.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/train/batch_source.hpp"
#include "ringdp/train/non_finite.hpp"
#include "train/step_sums.hpp"

namespace ringdp::train::detail {

/// A malformed batch (labels or real count not matching its columns) is this rank's
/// problem only: returned as a Failure to agree on like a failed fetch, so that the other
/// ranks are not left waiting.
[[nodiscard]] std::optional<Failure> check_batch(const Batch& batch);

/// Throws the same collective Error on every rank when the ranks' batches hold another
/// global real count than the `announced` one (BatchSource::real_per_step() disagreeing
/// with the batches).
void check_announced_count(const StepSums& sums, std::size_t announced, std::int64_t step);

/// nullopt when every rank's loss of step `step` is finite, else the NonFiniteError naming
/// the lowest rank whose loss is not (and how many more), or the overflow of the sum.
[[nodiscard]] std::optional<NonFiniteError> loss_verdict(const StepSums& sums, std::int64_t step);

/// The NonFiniteError for a non-finite averaged gradient of step `step`, naming the first
/// tensor, in forward order, that holds a NaN or Inf (the one nearest the input, where a bad
/// sample enters) and how many more do. Scans the arena: off the fast path.
[[nodiscard]] NonFiniteError gradient_verdict(const nn::Sequential<float>& model,
                                              std::int64_t step);

}  // namespace ringdp::train::detail
