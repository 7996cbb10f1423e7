#pragma once
// What the column- and row-parallel layers share: binding a slice of a Dense layer to
// the arenas, and drawing the whole layer's initial weights while keeping a slice.

#include <fmt/format.h>

#include <cstddef>
#include <new>
#include <span>

#include "ringdp/error.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/parallel/slice.hpp"

namespace ringdp::parallel::detail {

/// The slice of a width `width` held by rank `rank` of `ranks`, checked to be non-empty.
inline Slice checked_slice(std::size_t width, int ranks, int rank, const char* layer,
                           const char* what, std::size_t inputs, std::size_t outputs) {
  if (inputs == 0 || outputs == 0) {
    throw InvalidArgument(
        fmt::format("{} layer needs positive sizes, got {} -> {}", layer, inputs, outputs));
  }
  if (width < static_cast<std::size_t>(ranks)) {
    throw InvalidArgument(fmt::format(
        "{} {} -> {} cannot be split over {} tensor ranks: its {} {} are fewer than the ranks",
        layer, inputs, outputs, ranks, width, what));
  }
  return split_evenly(width, ranks, rank);
}

/// Points `w`, `b`, `dw`, `db` at the layer's slice of the arenas: a rows x cols weight
/// (column-major), then `bias` elements.
template <class T>
void bind_weight_and_bias(std::span<T> parameters, std::span<T> gradients, std::size_t rows,
                          std::size_t cols, std::size_t bias, Eigen::Map<nn::Matrix<T>>& w,
                          Eigen::Map<nn::Vector<T>>& b, Eigen::Map<nn::Matrix<T>>& dw,
                          Eigen::Map<nn::Vector<T>>& db, const char* layer) {
  const std::size_t nw = rows * cols;
  if (parameters.size() != nw + bias || gradients.size() != nw + bias) {
    throw InvalidArgument(fmt::format("{}::bind: slice of {} / {} elements, expected {}", layer,
                                      parameters.size(), gradients.size(), nw + bias));
  }
  const auto r = static_cast<Eigen::Index>(rows);
  const auto c = static_cast<Eigen::Index>(cols);
  const auto nb = static_cast<Eigen::Index>(bias);
  new (&w) Eigen::Map<nn::Matrix<T>>(parameters.data(), r, c);
  new (&b) Eigen::Map<nn::Vector<T>>(parameters.data() + nw, nb);
  new (&dw) Eigen::Map<nn::Matrix<T>>(gradients.data(), r, c);
  new (&db) Eigen::Map<nn::Vector<T>>(gradients.data() + nw, nb);
}

/// Draws the weights of a whole outputs x inputs Dense layer from `rng` exactly as
/// nn::Dense::initialize() does (column-major, one normal per weight, scaled by the whole
/// layer's init_stddev() and rounded once to T) and keeps the block rows x cols in `w`.
/// The draws outside the block are skipped, not saved: the generator ends where the
/// unsplit layer leaves it.
template <class T>
void draw_block(nn::NormalGenerator& rng, nn::Init init, std::size_t outputs, std::size_t inputs,
                Slice rows, Slice cols, Eigen::Map<nn::Matrix<T>>& w) {
  const double stddev = nn::init_stddev(init, inputs, outputs);
  rng.skip(cols.offset * outputs);
  for (std::size_t j = 0; j < cols.size; ++j) {
    rng.skip(rows.offset);
    for (std::size_t i = 0; i < rows.size; ++i) {
      w(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
          static_cast<T>(stddev * rng.normal());
    }
    rng.skip(outputs - rows.end());
  }
  rng.skip((inputs - cols.end()) * outputs);
}

}  // namespace ringdp::parallel::detail
