#include "ringdp/parallel/parallel_mlp.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"

namespace ringdp::parallel {
namespace {

// The layout, or the same InvalidArgument on every rank of `world` (a spec can be bad on
// one rank only if the ranks were started with different ones).
MlpLayout agreed_layout(const Grid& grid, std::string_view spec, int micro_batches) {
  return agree_on(grid.world(), [&] {
    if (grid.pipeline_size() > 1 && micro_batches < 1) {
      throw InvalidArgument(fmt::format("{} micro-batches (at least 1)", micro_batches));
    }
    return MlpLayout::from_spec(spec, grid.tensor_size(), grid.pipeline_size());
  });
}

// Softmax cross-entropy of the real columns among `columns` of the batch, with the
// gradient of scale x loss_sum / denominator.
template <class T>
nn::LossResult loss_of(const nn::Matrix<T>& logits, std::span<const std::int32_t> labels,
                       Slice columns, std::size_t real, double scale, nn::Matrix<T>& grad) {
  const std::size_t counted =
      real > columns.offset ? std::min(real - columns.offset, columns.size) : 0;
  const nn::LossResult r =
      nn::softmax_cross_entropy<T>(logits, labels.subspan(columns.offset, columns.size), grad,
                                   counted, real > 0 ? static_cast<double>(real) : 1.0);
  if (scale != 1.0) grad *= static_cast<T>(scale);
  return r;
}

}  // namespace

template <class T>
ParallelMlp<T>::ParallelMlp(const Grid& grid, std::string_view spec, int micro_batches,
                            Algorithm algorithm)
    : grid_(grid),
      layout_(agreed_layout(grid, spec, micro_batches)),
      model_(layout_.build<T>(grid.tensor(), grid.coordinates().pipeline, algorithm)) {
  if (grid.pipeline_size() > 1) {
    stage_ = std::make_unique<PipelineStage<T>>(grid.pipeline(), model_, micro_batches);
  }
}

template <class T>
ParallelMlp<T>::~ParallelMlp() = default;

template <class T>
void ParallelMlp<T>::initialize(std::uint64_t seed) {
  layout_.initialize(model_, grid_.coordinates().pipeline, seed);
}

template <class T>
nn::LossResult ParallelMlp<T>::train_batch(const nn::ConstMatrixRef<T>& x,
                                           std::span<const std::int32_t> labels, std::size_t real,
                                           double scale, const nn::BackwardHook& hook) {
  // Every stage knows the batch from its labels; only stage 0 reads x.
  const std::size_t batch = labels.size();
  if (stage_ == nullptr) {
    // The replica is this rank's model, split or not: the plain step (a tensor-parallel
    // layer's allreduce is inside its forward or backward).
    const nn::LossResult r =
        loss_of<T>(model_.forward(x), labels, Slice{0, batch}, real, scale, dlogits_);
    model_.backward(dlogits_, grid_.tensor_size() == 1 ? hook : nn::BackwardHook{});
    return r;
  }
  const nn::LossResult r =
      stage_->step(x, batch, [&](const nn::Matrix<T>& out, Slice columns, nn::Matrix<T>& grad) {
        return loss_of<T>(out, labels, columns, real, scale, grad);
      });
  return r;
}

template <class T>
nn::LossResult ParallelMlp<T>::evaluate_batch(const nn::ConstMatrixRef<T>& x,
                                              std::span<const std::int32_t> labels,
                                              std::size_t real) {
  const auto counted = static_cast<Eigen::Index>(real);
  if (stage_ == nullptr) {
    return loss_of<T>(model_.forward(x.leftCols(counted)), labels, Slice{0, real}, real, 1.0,
                      dlogits_);
  }
  return stage_->evaluate(x.leftCols(counted), real,
                          [&](const nn::Matrix<T>& out, Slice columns, nn::Matrix<T>& grad) {
                            return loss_of<T>(out, labels, columns, real, 1.0, grad);
                          });
}

template class ParallelMlp<float>;
template class ParallelMlp<double>;

}  // namespace ringdp::parallel
