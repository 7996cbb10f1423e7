// The verdict on a training step: failed counts, non-finite loss, non-finite gradient.

#include "train/step_verdict.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <span>
#include <string>

#include "ringdp/error.hpp"
#include "train/finite_scan.hpp"

namespace ringdp::train::detail {
namespace {

// "Dense 784x512": the layer's kind, capitalised, and its input and output sizes.
std::string describe_layer(const nn::Layer<float>& layer) {
  std::string kind = layer.kind();
  if (!kind.empty()) kind[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(kind[0])));
  return fmt::format("{} {}x{}", kind, layer.input_size(), layer.output_size());
}

}  // namespace

std::optional<Failure> check_batch(const Batch& batch) {
  const auto columns = static_cast<std::size_t>(batch.x.cols());
  if (batch.real <= columns && batch.labels.size() == columns) return std::nullopt;
  return Failure{ErrorKind::Generic,
                 fmt::format("Trainer::step: batch of {} columns, {} labels, {} real",
                             batch.x.cols(), batch.labels.size(), batch.real)};
}

void check_announced_count(const StepSums& sums, std::size_t announced, std::int64_t step) {
  if (sums.count == static_cast<double>(announced)) return;
  throw Error(-1,
              fmt::format("Trainer::step: step {} was announced with {} real samples over "
                          "all ranks, but the ranks' batches hold {}: a batch source's "
                          "real_per_step() disagrees with its batches",
                          step, announced, sums.count),
              true);
}

std::optional<NonFiniteError> loss_verdict(const StepSums& sums, std::int64_t step) {
  if (std::isfinite(sums.loss_sum) && sums.bad_ranks == 0.0) return std::nullopt;
  const auto bad_ranks = static_cast<int>(sums.bad_ranks);
  const int first = bad_ranks > 0 ? static_cast<int>(sums.first_bad_rank) : -1;
  std::string who = first < 0 ? std::string("summed over the ranks (overflow)")
                              : fmt::format("on rank {}", first);
  if (bad_ranks > 1) {
    who += fmt::format(" and {} more rank{}", bad_ranks - 1, bad_ranks > 2 ? "s" : "");
  }
  return NonFiniteError(step, -1, first, fmt::format("step {}: non-finite loss {}", step, who));
}

NonFiniteError gradient_verdict(const nn::Sequential<float>& model, std::int64_t step) {
  // Every rank scans the same averaged bits, so every rank writes the same message.
  const std::span<const float> gradients = model.gradients();
  int first_layer = -1;
  std::string where;
  std::size_t bad_tensors = 0;
  for (std::size_t i = 0; i < model.layer_count(); ++i) {
    std::size_t offset = model.layer_range(i).offset;
    for (const nn::TensorShape& shape : model.layer(i).parameter_shapes()) {
      const std::size_t size = shape.rows * shape.cols;
      const std::size_t bad = count_nonfinite(gradients.subspan(offset, size));
      offset += size;
      if (bad == 0) continue;
      ++bad_tensors;
      if (first_layer >= 0) continue;
      first_layer = static_cast<int>(i);
      where = fmt::format("in layer {} ({}, {}): {} of {} values are NaN or Inf", i,
                          describe_layer(model.layer(i)), shape.name, bad, size);
    }
  }
  if (first_layer < 0) where = "(found in the reduction, gone from the arena)";
  if (bad_tensors == 2) where += "; 1 more tensor holds some";
  if (bad_tensors > 2) where += fmt::format("; {} more tensors hold some", bad_tensors - 1);
  return NonFiniteError(step, first_layer, -1,
                        fmt::format("step {}: non-finite averaged gradient {}", step, where));
}

}  // namespace ringdp::train::detail
