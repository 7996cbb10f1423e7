#pragma once
/// \file
/// Where each layer of an MLP goes on a tensor x pipeline grid, and how a rank's part of
/// the model maps onto the unsplit model's parameter arena.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/types.hpp"

namespace ringdp::parallel {

/// How one Dense layer is held by the ranks of a tensor group.
enum class DenseSplit {
  Replicated,  ///< every rank holds the whole layer (nn::Dense); always so when T = 1
  Column,      ///< ColumnParallelDense: split by output rows
  Row,         ///< RowParallelDense: split by input columns, bias replicated
};

/// "replicated", "column", "row".
[[nodiscard]] const char* to_string(DenseSplit split) noexcept;

/// One Dense layer of the MLP and its place.
struct DensePlacement {
  std::size_t inputs = 0;   ///< of the whole layer
  std::size_t outputs = 0;  ///< of the whole layer
  int stage = 0;            ///< pipeline stage holding it
  DenseSplit split = DenseSplit::Replicated;
  bool relu = false;  ///< followed by a ReLU (every Dense but the model's last)
  nn::Init init = nn::Init::He;
};

/// A contiguous run of elements of a rank's local arena and where it sits in the unsplit
/// model's arena (the layout of nn::Sequential::from_spec(), last layer first).
struct ArenaRun {
  std::size_t local_offset = 0;
  std::size_t full_offset = 0;
  std::size_t count = 0;
  /// Every rank of the tensor group holds these same elements (a replicated layer, a
  /// row-parallel bias); tensor rank 0's copy stands for them all.
  bool replicated = false;
};

/// The placement of the MLP of nn::Sequential::from_spec() (Dense layers with ReLU between
/// them, He initialisation, Xavier for the last) on T tensor x P pipeline ranks:
///
/// - Stages: the Dense layers are cut into P consecutive, non-empty runs with the largest
///   run's parameter count as small as it can be (compute per stage follows it); each
///   Dense takes the ReLU after it into its stage. Every stage boundary carries a whole
///   activation (the same on every tensor rank).
/// - Tensor splits, within each stage: Column, Row, Column, Row, ... (the conjugate pair:
///   one allreduce forward and one backward per pair); a stage's odd last Dense is
///   Replicated (for the usual MLP this is a small output layer).
///
/// With T = 1 and P = 1 the one stage's model is exactly nn::Sequential::from_spec()'s.
/// Local, no MPI (building a stage's model needs the tensor group's Communicator only to
/// hand it to the split layers).
class MlpLayout {
 public:
  /// Throws InvalidArgument when tensor or pipeline < 1, the model has fewer Dense layers
  /// than there are stages, or a split width is narrower than the tensor group (each rank
  /// needs at least one row or column; widths T does not divide are split unevenly).
  MlpLayout(std::vector<std::size_t> widths, int tensor, int pipeline);
  /// From a spec such as "784-512-256-10" (nn::parse_model_spec()).
  [[nodiscard]] static MlpLayout from_spec(std::string_view spec, int tensor, int pipeline);

  [[nodiscard]] const std::vector<std::size_t>& widths() const noexcept { return widths_; }
  [[nodiscard]] int tensor() const noexcept { return tensor_; }
  [[nodiscard]] int pipeline() const noexcept { return pipeline_; }
  [[nodiscard]] const std::vector<DensePlacement>& dense_layers() const noexcept { return dense_; }
  /// Indices [first, last) of `stage`'s Dense layers.
  [[nodiscard]] std::size_t first_dense(int stage) const;
  [[nodiscard]] std::size_t end_dense(int stage) const;
  /// Widths of the activation entering / leaving `stage`.
  [[nodiscard]] std::size_t stage_inputs(int stage) const;
  [[nodiscard]] std::size_t stage_outputs(int stage) const;

  /// The model of `stage` as held by rank tensor.rank() of the tensor group `tensor` (of
  /// size tensor(); it must outlive the model). Parameters are zero until initialize().
  /// `algorithm`: of the tensor-parallel allreduces.
  template <class T>
  [[nodiscard]] nn::Sequential<T> build(const Communicator& tensor, int stage,
                                        Algorithm algorithm = Algorithm::Auto) const;
  /// Initialises a model from build(..., stage) with exactly its part of the unsplit
  /// model's initialisation from `seed` (the draws of the stages before are skipped).
  template <class T>
  void initialize(nn::Sequential<T>& model, int stage, std::uint64_t seed) const;

  /// Parameters of the unsplit model.
  [[nodiscard]] std::size_t full_parameter_count() const noexcept { return full_count_; }
  /// Parameters held by tensor rank `tensor_rank` of stage `stage`.
  [[nodiscard]] std::size_t parameter_count(int stage, int tensor_rank) const;
  /// The largest parameter_count() over the ranks (the memory a rank must have).
  [[nodiscard]] std::size_t max_parameter_count() const;
  /// Where that rank's local arena sits in the unsplit arena, in local order, tiling the
  /// local arena.
  [[nodiscard]] std::vector<ArenaRun> arena_runs(int stage, int tensor_rank) const;

  /// One line per stage: "stage 0: 784x512 column, 512x256 row".
  [[nodiscard]] std::vector<std::string> describe() const;

 private:
  // Offset of Dense layer k's weight in the unsplit arena.
  [[nodiscard]] std::size_t full_offset(std::size_t k) const;
  void check_stage(int stage) const;

  std::vector<std::size_t> widths_;
  int tensor_;
  int pipeline_;
  std::vector<DensePlacement> dense_;
  std::vector<std::size_t> stage_begin_;  // P + 1 entries
  std::size_t full_count_ = 0;
};

}  // namespace ringdp::parallel
