#pragma once
/// \file
/// The data x tensor x pipeline grid: a communicator's ranks arranged so that each model
/// replica spans tensor x pipeline ranks, and the replicas form the data dimension.

#include <string>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::parallel {

/// A rank's place in the grid (0-based, each below its dimension's size).
struct GridCoordinates {
  int data = 0;
  int tensor = 0;
  int pipeline = 0;
  friend bool operator==(const GridCoordinates&, const GridCoordinates&) = default;
};

/// Splits a communicator of D x T x P ranks into the groups model parallelism talks in:
///
/// - tensor group (T ranks): hold slices of the same layers and allreduce activations
///   several times per step, so their ranks are ADJACENT (rank = t + T (d + D p)): with
///   the usual block placement of ranks on nodes they share a node and its memory;
/// - data group (D ranks): the model replicas, averaging gradients once per step; their
///   ranks are STRIDED by T;
/// - pipeline group (P ranks): the stages of one replica, passing activations forward
///   and gradients back point to point; strided by T x D (the outermost dimension, as in
///   Megatron-LM's default order, so that a stage boundary is where nodes part);
/// - model group (T x P ranks): one whole replica, for gathering the full model
///   (checkpoints).
///
/// Each group is its own Communicator (its own MPI communicator, so messages of different
/// groups never match). Move-only. Construction is collective over the communicator; the
/// accessors are local.
class Grid {
 public:
  /// Collective over `comm`. First agrees that every rank passed the same `tensor` and
  /// `pipeline` (an InvalidArgument on every rank naming the ranks that differ), then
  /// checks that both are >= 1 and that tensor x pipeline divides comm.size(): otherwise
  /// every rank throws the same InvalidArgument, before any group is made.
  Grid(const Communicator& comm, int tensor, int pipeline);

  Grid(Grid&&) noexcept = default;
  Grid& operator=(Grid&&) noexcept = default;
  Grid(const Grid&) = delete;
  Grid& operator=(const Grid&) = delete;

  /// Sizes of the dimensions: data() x tensor() x pipeline() = world().size().
  [[nodiscard]] int data_size() const noexcept { return data_size_; }
  [[nodiscard]] int tensor_size() const noexcept { return tensor_size_; }
  [[nodiscard]] int pipeline_size() const noexcept { return pipeline_size_; }
  /// This rank's coordinates.
  [[nodiscard]] const GridCoordinates& coordinates() const noexcept { return coordinates_; }
  /// The rank of `at` in world() (InvalidArgument when a coordinate is out of range).
  [[nodiscard]] int rank_of(const GridCoordinates& at) const;
  /// The coordinates of `rank` of world() (InvalidArgument when out of range).
  [[nodiscard]] GridCoordinates coordinates_of(int rank) const;

  /// This rank's first stage / last stage: it holds the model's input / output layers.
  [[nodiscard]] bool first_stage() const noexcept { return coordinates_.pipeline == 0; }
  [[nodiscard]] bool last_stage() const noexcept {
    return coordinates_.pipeline + 1 == pipeline_size_;
  }

  /// A duplicate of the communicator the grid was made from.
  [[nodiscard]] const Communicator& world() const noexcept { return world_; }
  /// The ranks with this rank's tensor and pipeline coordinates (rank in it = data index).
  [[nodiscard]] const Communicator& data() const noexcept { return data_; }
  /// The ranks with this rank's data and pipeline coordinates (rank = tensor index).
  [[nodiscard]] const Communicator& tensor() const noexcept { return tensor_; }
  /// The ranks with this rank's data and tensor coordinates (rank = stage).
  [[nodiscard]] const Communicator& pipeline() const noexcept { return pipeline_; }
  /// The ranks with this rank's data coordinate: one model replica (rank = t + T p).
  [[nodiscard]] const Communicator& model() const noexcept { return model_; }

  /// "4 ranks = data 2 x tensor 2 x pipeline 1".
  [[nodiscard]] std::string describe() const;

 private:
  struct Shape {
    int data, tensor, pipeline;
    GridCoordinates at;
  };
  Grid(const Communicator& comm, const Shape& shape);
  static Shape checked_shape(const Communicator& comm, int tensor, int pipeline);

  Communicator world_;
  int data_size_ = 1;
  int tensor_size_ = 1;
  int pipeline_size_ = 1;
  GridCoordinates coordinates_;
  Communicator data_;
  Communicator tensor_;
  Communicator pipeline_;
  Communicator model_;
};

}  // namespace ringdp::parallel
