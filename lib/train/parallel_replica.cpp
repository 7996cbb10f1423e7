// A ParallelMlp as the Trainer's Replica.

#include "ringdp/train/parallel_replica.hpp"

#include "ringdp/parallel/full_arena.hpp"

namespace ringdp::train {

nn::LossResult ParallelReplica::train_batch(const Batch& batch, double scale,
                                            const nn::BackwardHook& hook) {
  return mlp_.train_batch(batch.x, batch.labels, batch.real, scale, hook);
}

nn::LossResult ParallelReplica::evaluate_batch(const Batch& batch) {
  return mlp_.evaluate_batch(batch.x, batch.labels, batch.real);
}

std::size_t ParallelReplica::full_parameter_count() const {
  return mlp_.layout().full_parameter_count();
}

std::vector<float> ParallelReplica::gather_full(std::span<const float> local) const {
  std::vector<float> full(full_parameter_count());
  parallel::gather_full<float>(mlp_.grid(), mlp_.layout(), local, full);
  return full;
}

void ParallelReplica::scatter_full(std::span<const float> full, std::span<float> local) const {
  const parallel::GridCoordinates& at = mlp_.grid().coordinates();
  parallel::scatter_full<float>(mlp_.layout(), at.pipeline, at.tensor, full, local);
}

}  // namespace ringdp::train
