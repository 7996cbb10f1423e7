#pragma once
/// \file
/// One model replica split over a grid: this rank's part of an MLP, and a training step's
/// forward, loss and backward over it, whatever the layout.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/mlp_layout.hpp"
#include "ringdp/parallel/pipeline_stage.hpp"
#include "ringdp/types.hpp"

namespace ringdp::parallel {

/// This rank's part of the MLP of a spec on a Grid: the layers of its pipeline stage, its
/// slices of the tensor-parallel ones (MlpLayout), and with P > 1 its PipelineStage. A
/// step runs the same computation as the unsplit model on the replica's batch: the data
/// dimension (averaging the gradients over the replicas) is the trainer's. For T = 1 and
/// P = 1 it is exactly nn::Sequential::from_spec()'s model, step for step.
///
/// Every rank of a replica (tensor and pipeline groups) works on the same batch: stage 0
/// reads its features, the last stage its labels. Collective as described per method; the
/// grid must outlive this object. Not thread-safe. T: float or double.
template <class T>
class ParallelMlp {
 public:
  /// Collective over grid.world(): every rank throws the same InvalidArgument when the
  /// spec cannot be split over the grid's tensor and pipeline sizes (MlpLayout) or when
  /// `micro_batches` < 1 (with P > 1; P = 1 runs the whole batch at once). `algorithm`:
  /// of the tensor-parallel allreduces. Parameters are zero until initialize().
  ParallelMlp(const Grid& grid, std::string_view spec, int micro_batches = 1,
              Algorithm algorithm = Algorithm::Auto);
  ~ParallelMlp();
  ParallelMlp(const ParallelMlp&) = delete;
  ParallelMlp& operator=(const ParallelMlp&) = delete;

  /// Local: this rank's part of the unsplit model's initialisation from `seed`.
  void initialize(std::uint64_t seed);

  /// One step's forward and backward on this replica's batch `x` (features x columns;
  /// read on stage 0 only) with `labels` (one per column; read on the last stage only):
  /// softmax cross-entropy over the first `real` columns (the rest is padding), with the
  /// gradient of scale x (loss sum / real) (scale: the trainer's weighting of replicas
  /// with unequal real counts; 1 otherwise). The parameter gradients land in
  /// model().gradients(). `hook` is called as by nn::Sequential::backward() when the
  /// replica is one rank's whole model (T = 1, P = 1; a reducer may then start on each
  /// finished layer) and never otherwise. Returns the loss over the real columns on the
  /// last stage, zeros elsewhere. Collective over the tensor and pipeline groups.
  nn::LossResult train_batch(const nn::ConstMatrixRef<T>& x, std::span<const std::int32_t> labels,
                             std::size_t real, double scale, const nn::BackwardHook& hook = {});

  /// Forward only, over the first `real` (>= 1) columns: the loss on the last stage,
  /// zeros elsewhere. Collective like train_batch().
  nn::LossResult evaluate_batch(const nn::ConstMatrixRef<T>& x,
                                std::span<const std::int32_t> labels, std::size_t real);

  [[nodiscard]] nn::Sequential<T>& model() noexcept { return model_; }
  [[nodiscard]] const nn::Sequential<T>& model() const noexcept { return model_; }
  [[nodiscard]] const MlpLayout& layout() const noexcept { return layout_; }
  [[nodiscard]] const Grid& grid() const noexcept { return grid_; }
  /// The pipeline stage (nullptr when P = 1).
  [[nodiscard]] const PipelineStage<T>* pipeline() const noexcept { return stage_.get(); }
  /// This rank computes the loss (the last stage; every tensor rank of it, identically).
  [[nodiscard]] bool computes_loss() const noexcept { return grid_.last_stage(); }
  /// This rank's loss is the replica's in a sum over ranks: the last stage's tensor rank
  /// 0 (the other tensor ranks hold the same values).
  [[nodiscard]] bool reports_loss() const noexcept {
    return grid_.last_stage() && grid_.coordinates().tensor == 0;
  }

 private:
  const Grid& grid_;
  MlpLayout layout_;
  nn::Sequential<T> model_;
  std::unique_ptr<PipelineStage<T>> stage_;
  nn::Matrix<T> dlogits_;
};

extern template class ParallelMlp<float>;
extern template class ParallelMlp<double>;

}  // namespace ringdp::parallel
