#pragma once
/// \file
/// A parallel::ParallelMlp as the Trainer's Replica: an MLP split over the tensor and
/// pipeline groups of a parallel::Grid, trained data-parallel over its data group.
///
///   parallel::Grid grid(world, /*tensor=*/2, /*pipeline=*/2);
///   parallel::ParallelMlp<float> mlp(grid, "784-512-256-10", /*micro_batches=*/4);
///   mlp.initialize(seed);
///   train::ParallelReplica replica(mlp);
///   nn::Sgd<float> sgd(mlp.model().parameter_count());
///   train::Trainer trainer(grid.data(), replica, sgd);

#include "ringdp/parallel/parallel_mlp.hpp"
#include "ringdp/train/replica.hpp"

namespace ringdp::train {

/// The Replica of a ParallelMlp<float> (which must outlive it).
class ParallelReplica final : public Replica {
 public:
  explicit ParallelReplica(parallel::ParallelMlp<float>& mlp) : mlp_(mlp) {}

  [[nodiscard]] nn::Sequential<float>& model() override { return mlp_.model(); }
  [[nodiscard]] const Communicator& world() const override { return mlp_.grid().world(); }
  [[nodiscard]] const Communicator& members() const override { return mlp_.grid().model(); }
  [[nodiscard]] bool reports_loss() const override { return mlp_.reports_loss(); }
  nn::LossResult train_batch(const Batch& batch, double scale,
                             const nn::BackwardHook& hook) override;
  nn::LossResult evaluate_batch(const Batch& batch) override;
  [[nodiscard]] std::size_t full_parameter_count() const override;
  [[nodiscard]] std::vector<float> gather_full(std::span<const float> local) const override;
  void scatter_full(std::span<const float> full, std::span<float> local) const override;

 private:
  parallel::ParallelMlp<float>& mlp_;
};

}  // namespace ringdp::train
