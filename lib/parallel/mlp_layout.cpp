#include "ringdp/parallel/mlp_layout.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "ringdp/error.hpp"
#include "ringdp/nn/activations.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/model_spec.hpp"
#include "ringdp/parallel/column_parallel_dense.hpp"
#include "ringdp/parallel/row_parallel_dense.hpp"
#include "ringdp/parallel/slice.hpp"

namespace ringdp::parallel {
namespace {

std::size_t dense_cost(std::size_t inputs, std::size_t outputs) {
  return inputs * outputs + outputs;
}

// Cuts costs[0..n) into `parts` consecutive non-empty runs minimising the largest run's
// sum (the classic linear partition, by dynamic programming: n and parts are a few dozen
// at most). Returns the parts + 1 boundaries. Ties go to the first cut found, so the
// result is a function of the costs alone (every rank computes the same).
std::vector<std::size_t> balanced_cuts(const std::vector<std::size_t>& costs, int parts) {
  const std::size_t n = costs.size();
  const auto p_count = static_cast<std::size_t>(parts);
  std::vector<std::size_t> prefix(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + costs[i];
  constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  // best[p][i]: the smallest largest-run sum of the first i costs in p runs; cut[p][i]:
  // where the last of those runs begins.
  std::vector<std::vector<std::size_t>> best(p_count + 1, std::vector<std::size_t>(n + 1, kNone));
  std::vector<std::vector<std::size_t>> cut(p_count + 1, std::vector<std::size_t>(n + 1, 0));
  best[0][0] = 0;
  for (std::size_t p = 1; p <= p_count; ++p) {
    for (std::size_t i = p; i <= n; ++i) {
      for (std::size_t j = p - 1; j < i; ++j) {
        if (best[p - 1][j] == kNone) continue;
        const std::size_t worst = std::max(best[p - 1][j], prefix[i] - prefix[j]);
        if (worst < best[p][i]) {
          best[p][i] = worst;
          cut[p][i] = j;
        }
      }
    }
  }
  std::vector<std::size_t> bounds(p_count + 1, 0);
  bounds[p_count] = n;
  for (std::size_t p = p_count; p > 0; --p) bounds[p - 1] = cut[p][bounds[p]];
  return bounds;
}

}  // namespace

const char* to_string(DenseSplit split) noexcept {
  switch (split) {
    case DenseSplit::Replicated:
      return "replicated";
    case DenseSplit::Column:
      return "column";
    case DenseSplit::Row:
      return "row";
  }
  return "?";
}

MlpLayout::MlpLayout(std::vector<std::size_t> widths, int tensor, int pipeline)
    : widths_(std::move(widths)), tensor_(tensor), pipeline_(pipeline) {
  if (widths_.size() < 2) throw InvalidArgument("MlpLayout: an MLP needs at least two widths");
  if (tensor < 1 || pipeline < 1) {
    throw InvalidArgument(fmt::format(
        "MlpLayout: tensor {} x pipeline {}: both sizes must be at least 1", tensor, pipeline));
  }
  const std::size_t n = widths_.size() - 1;
  if (static_cast<std::size_t>(pipeline) > n) {
    throw InvalidArgument(fmt::format(
        "the model {} has {} Dense layer{}: it cannot be cut into {} pipeline stages (each "
        "stage needs at least one)",
        fmt::join(widths_, "-"), n, n == 1 ? "" : "s", pipeline));
  }
  std::vector<std::size_t> costs;
  for (std::size_t k = 0; k < n; ++k) {
    costs.push_back(dense_cost(widths_[k], widths_[k + 1]));
    full_count_ += costs.back();
  }
  stage_begin_ = balanced_cuts(costs, pipeline);
  for (int s = 0; s < pipeline; ++s) {
    const std::size_t first = stage_begin_[static_cast<std::size_t>(s)];
    const std::size_t end = stage_begin_[static_cast<std::size_t>(s) + 1];
    for (std::size_t k = first; k < end; ++k) {
      DensePlacement d{.inputs = widths_[k],
                       .outputs = widths_[k + 1],
                       .stage = s,
                       .relu = k + 1 < n,
                       .init = k + 1 < n ? nn::Init::He : nn::Init::Xavier};
      // Pairs from the stage's first Dense: column, row, column, row...; an odd last one
      // stays whole, since a lone column layer would leave its output split at the stage
      // boundary.
      const std::size_t in_stage = k - first;
      if (tensor > 1 && (in_stage % 2 == 1 || k + 1 < end)) {
        d.split = in_stage % 2 == 0 ? DenseSplit::Column : DenseSplit::Row;
      }
      // The width a pair splits is the column layer's outputs (= the row layer's inputs).
      const std::size_t split_width = d.split == DenseSplit::Column ? d.outputs : d.inputs;
      if (d.split != DenseSplit::Replicated && split_width < static_cast<std::size_t>(tensor)) {
        throw InvalidArgument(fmt::format(
            "the model {} cannot be split over {} tensor ranks: Dense layer {} ({}x{}, {}) "
            "would split a width of {} (each rank needs at least one)",
            fmt::join(widths_, "-"), tensor, k, d.inputs, d.outputs, to_string(d.split),
            split_width));
      }
      dense_.push_back(d);
    }
  }
}

MlpLayout MlpLayout::from_spec(std::string_view spec, int tensor, int pipeline) {
  return MlpLayout(nn::parse_model_spec(spec), tensor, pipeline);
}

void MlpLayout::check_stage(int stage) const {
  if (stage < 0 || stage >= pipeline_) {
    throw InvalidArgument(
        fmt::format("MlpLayout: stage {} does not exist (pipeline of {})", stage, pipeline_));
  }
}

std::size_t MlpLayout::first_dense(int stage) const {
  check_stage(stage);
  return stage_begin_[static_cast<std::size_t>(stage)];
}

std::size_t MlpLayout::end_dense(int stage) const {
  check_stage(stage);
  return stage_begin_[static_cast<std::size_t>(stage) + 1];
}

std::size_t MlpLayout::stage_inputs(int stage) const { return widths_[first_dense(stage)]; }

std::size_t MlpLayout::stage_outputs(int stage) const { return widths_[end_dense(stage)]; }

std::size_t MlpLayout::full_offset(std::size_t k) const {
  // The unsplit arena holds the last layer first (nn::Sequential).
  std::size_t offset = 0;
  for (std::size_t j = dense_.size(); j-- > k + 1;) {
    offset += dense_cost(dense_[j].inputs, dense_[j].outputs);
  }
  return offset;
}

std::vector<ArenaRun> MlpLayout::arena_runs(int stage, int tensor_rank) const {
  if (tensor_rank < 0 || tensor_rank >= tensor_) {
    throw InvalidArgument(fmt::format("MlpLayout: tensor rank {} of {}", tensor_rank, tensor_));
  }
  std::vector<ArenaRun> runs;
  std::size_t local = 0;
  auto add = [&](std::size_t full, std::size_t count, bool replicated) {
    runs.push_back({local, full, count, replicated && tensor_ > 1});
    local += count;
  };
  // The local arena too holds the stage's last layer first; within a layer, weight then bias.
  for (std::size_t k = end_dense(stage); k-- > first_dense(stage);) {
    const DensePlacement& d = dense_[k];
    const std::size_t base = full_offset(k);
    const std::size_t bias = base + d.inputs * d.outputs;
    switch (d.split) {
      case DenseSplit::Replicated:
        add(base, d.inputs * d.outputs, true);
        add(bias, d.outputs, true);
        break;
      case DenseSplit::Column: {
        // Rows S of a column-major weight: one run per column.
        const Slice rows = split_evenly(d.outputs, tensor_, tensor_rank);
        for (std::size_t j = 0; j < d.inputs; ++j)
          add(base + j * d.outputs + rows.offset, rows.size, false);
        add(bias + rows.offset, rows.size, false);
        break;
      }
      case DenseSplit::Row: {
        // Columns S of a column-major weight: one contiguous block.
        const Slice cols = split_evenly(d.inputs, tensor_, tensor_rank);
        add(base + cols.offset * d.outputs, cols.size * d.outputs, false);
        add(bias, d.outputs, true);
        break;
      }
    }
  }
  return runs;
}

std::size_t MlpLayout::parameter_count(int stage, int tensor_rank) const {
  std::size_t count = 0;
  for (const ArenaRun& run : arena_runs(stage, tensor_rank)) count += run.count;
  return count;
}

std::size_t MlpLayout::max_parameter_count() const {
  std::size_t most = 0;
  for (int s = 0; s < pipeline_; ++s) {
    for (int t = 0; t < tensor_; ++t) most = std::max(most, parameter_count(s, t));
  }
  return most;
}

template <class T>
nn::Sequential<T> MlpLayout::build(const Communicator& tensor, int stage,
                                   Algorithm algorithm) const {
  if (tensor.size() != tensor_) {
    throw InvalidArgument(fmt::format(
        "MlpLayout::build: a tensor group of {} ranks for a layout of {}", tensor.size(), tensor_));
  }
  std::vector<std::unique_ptr<nn::Layer<T>>> layers;
  for (std::size_t k = first_dense(stage); k < end_dense(stage); ++k) {
    const DensePlacement& d = dense_[k];
    switch (d.split) {
      case DenseSplit::Replicated:
        layers.push_back(std::make_unique<nn::Dense<T>>(d.inputs, d.outputs, d.init));
        break;
      case DenseSplit::Column:
        layers.push_back(std::make_unique<ColumnParallelDense<T>>(tensor, d.inputs, d.outputs,
                                                                  d.init, algorithm));
        break;
      case DenseSplit::Row:
        layers.push_back(
            std::make_unique<RowParallelDense<T>>(tensor, d.inputs, d.outputs, d.init, algorithm));
        break;
    }
    if (d.relu) layers.push_back(std::make_unique<nn::ReLU<T>>(layers.back()->output_size()));
  }
  return nn::Sequential<T>(std::move(layers));
}

template <class T>
void MlpLayout::initialize(nn::Sequential<T>& model, int stage, std::uint64_t seed) const {
  // Every Dense draws one normal per weight of the whole layer (split or not), so the
  // stages before this one drew the sum of their weight counts.
  nn::NormalGenerator rng(seed);
  for (std::size_t k = 0; k < first_dense(stage); ++k)
    rng.skip(dense_[k].inputs * dense_[k].outputs);
  model.initialize(rng);
}

std::vector<std::string> MlpLayout::describe() const {
  std::vector<std::string> lines;
  for (int s = 0; s < pipeline_; ++s) {
    std::vector<std::string> parts;
    for (std::size_t k = first_dense(s); k < end_dense(s); ++k) {
      parts.push_back(
          fmt::format("{}x{} {}", dense_[k].inputs, dense_[k].outputs, to_string(dense_[k].split)));
    }
    lines.push_back(fmt::format("stage {}: {}", s, fmt::join(parts, ", ")));
  }
  return lines;
}

template nn::Sequential<float> MlpLayout::build<float>(const Communicator&, int, Algorithm) const;
template nn::Sequential<double> MlpLayout::build<double>(const Communicator&, int, Algorithm) const;
template void MlpLayout::initialize<float>(nn::Sequential<float>&, int, std::uint64_t) const;
template void MlpLayout::initialize<double>(nn::Sequential<double>&, int, std::uint64_t) const;

}  // namespace ringdp::parallel
