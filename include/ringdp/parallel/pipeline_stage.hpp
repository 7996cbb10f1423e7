#pragma once
/// \file
/// One stage of a pipeline-parallel model: consecutive layers on one rank of a pipeline
/// group, running a step's micro-batches in the 1F1B order with non-blocking transfers of
/// activations (forward) and their gradients (backward) between neighbouring stages.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/parallel/pipeline_schedule.hpp"
#include "ringdp/parallel/slice.hpp"

namespace ringdp::detail {
class Requests;  // the library's record of a call's requests (lib/comm/requests.hpp)
}  // namespace ringdp::detail

namespace ringdp::parallel {

/// The loss of one micro-batch, on the last stage: `output` is the model's output for the
/// batch's columns `columns`; writes dL/d(output) into `grad` (resized to output's shape)
/// and returns the micro-batch's loss. L is the caller's: to get the gradient of the
/// batch's mean loss, scale each micro-batch's gradient by 1 / (the batch's count).
template <class T>
using MicroBatchLoss =
    std::function<nn::LossResult(const nn::Matrix<T>& output, Slice columns, nn::Matrix<T>& grad)>;

/// Where one stage's time of the last step went (seconds, on this rank).
struct PipelineTimes {
  double total = 0.0;    ///< from the step's start to its last transfer's completion
  double compute = 0.0;  ///< forward, loss and backward passes (tensor allreduces included)
  double wait = 0.0;     ///< waiting for a neighbour's activations or gradients, or for sends
  /// The part of the step this stage did not compute: the pipeline bubble plus the
  /// transfers not hidden behind compute, as a fraction of total.
  [[nodiscard]] double idle_fraction() const noexcept {
    return total > 0.0 ? (total - compute) / total : 0.0;
  }
};

/// One pass of the last step on this stage, in seconds from the step's start.
struct PipelineEvent {
  Pass pass = Pass::Forward;
  int micro_batch = 0;
  double start = 0.0;
  double end = 0.0;
};

/// A stage of a pipeline over the ranks of a pipeline group (rank s holds stage s): the
/// `model` holds its layers. A step cuts the batch into M micro-batches of consecutive
/// columns (split_evenly(): sizes differ by at most one) and runs them in the 1F1B order
/// (one_forward_one_backward()). Stage s > 0 receives micro-batch k's input from stage
/// s - 1, and stage s < P - 1 sends its output to stage s + 1; in backward the gradients
/// flow the other way. Every receive of the step is posted when the step starts and every
/// send is non-blocking, so transfers run while the stage computes other micro-batches,
/// and a stage waits only for data it needs now. The parameter gradients of the step (the
/// sum over the micro-batches) are in model.gradients() when step() returns, ready for a
/// data-parallel reduction and the optimizer.
///
/// Each micro-batch in flight keeps its own activations (nn::ForwardCache); at most
/// P - s of them are alive on stage s at once. Messages go on the stage's own duplicate
/// of the pipeline group. Waits are watched by the stall inspector (as "pipeline step").
/// Not thread-safe; the model must outlive the stage.
template <class T>
class PipelineStage {
 public:
  /// Collective over `pipeline`. Agrees that every stage passed the same `micro_batches`
  /// (>= 1) and checks that each stage's model takes the previous stage's output width:
  /// otherwise every rank throws the same InvalidArgument.
  PipelineStage(const Communicator& pipeline, nn::Sequential<T>& model, int micro_batches);
  ~PipelineStage();
  PipelineStage(const PipelineStage&) = delete;
  PipelineStage& operator=(const PipelineStage&) = delete;

  /// One training step's forward and backward over a batch of `batch` samples (>= the
  /// number of micro-batches; the same on every stage). Stage 0 reads its input from `x`
  /// (input width x batch; other stages ignore `x`); the last stage calls `loss` once per
  /// micro-batch, in order, and returns the sum of their results (count, loss_sum,
  /// correct; other stages return zeros). Collective over the pipeline group, and over
  /// the tensor groups the model's layers communicate in. When a step unwinds (an
  /// exception), its transfers are settled with the other stages before step() throws:
  /// every stage must then unwind the same step (an error they all meet); a stage whose
  /// peers do not, within the settle time, ends the job with a message naming itself (a
  /// stage cannot return while a neighbour may still write into its buffers, and must not
  /// hang).
  nn::LossResult step(const nn::ConstMatrixRef<T>& x, std::size_t batch,
                      const MicroBatchLoss<T>& loss);

  /// Forward passes only (evaluation): like step() without backward, over
  /// min(batch, micro_batches()) micro-batches, so any batch of at least one sample will
  /// do. `loss` is called as in step() (its gradient is not used); the parameter
  /// gradients are left as they were. Collective like step().
  nn::LossResult evaluate(const nn::ConstMatrixRef<T>& x, std::size_t batch,
                          const MicroBatchLoss<T>& loss);

  /// The columns of micro-batch k of a batch of `batch` samples.
  [[nodiscard]] Slice micro_batch(std::size_t batch, int k) const;
  [[nodiscard]] int micro_batches() const noexcept { return micro_batches_; }
  [[nodiscard]] int stage() const noexcept { return comm_.rank(); }
  [[nodiscard]] int stages() const noexcept { return comm_.size(); }
  [[nodiscard]] bool first() const noexcept { return comm_.rank() == 0; }
  [[nodiscard]] bool last() const noexcept { return comm_.rank() + 1 == comm_.size(); }
  /// Where the last step's time went, and its passes (local).
  [[nodiscard]] const PipelineTimes& times() const noexcept { return times_; }
  [[nodiscard]] const std::vector<PipelineEvent>& events() const noexcept { return events_; }
  /// Names `step` in stall reports of the following steps (local).
  void set_stall_step(std::int64_t step) noexcept;

 private:
  void forward(detail::Requests& requests, const nn::ConstMatrixRef<T>& x, int k,
               const MicroBatchLoss<T>& loss, nn::LossResult& total);
  void backward(detail::Requests& requests, int k);
  nn::LossResult run(const nn::ConstMatrixRef<T>& x, std::size_t batch,
                     const MicroBatchLoss<T>& loss, const std::vector<PipelineAction>& actions,
                     int micro_batches, const char* name);
  void post_receives(detail::Requests& requests, bool gradients);
  void wait_for(detail::Requests& requests, std::size_t index);

  Communicator comm_;
  nn::Sequential<T>& model_;
  int micro_batches_;
  std::size_t batch_ = 0;  // of the step in progress
  int running_ = 0;        // micro-batches of the step in progress
  std::vector<PipelineAction> schedule_;
  std::vector<nn::ForwardCache<T>> caches_;   // per micro-batch
  std::vector<nn::Matrix<T>> inputs_;         // activations received, per micro-batch
  std::vector<nn::Matrix<T>> output_grads_;   // gradients received (or the loss's), per micro-batch
  std::vector<nn::Matrix<T>> input_grads_;    // gradients sent back, per micro-batch
  std::vector<T> accumulated_;                // sum of the micro-batches' parameter gradients
  std::vector<std::size_t> activation_recv_;  // per micro-batch: its receive's index
  std::vector<std::size_t> gradient_recv_;
  PipelineTimes times_;
  std::vector<PipelineEvent> events_;
  std::int64_t backward_count_ = 0;
};

extern template class PipelineStage<float>;
extern template class PipelineStage<double>;

}  // namespace ringdp::parallel
