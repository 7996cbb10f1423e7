#pragma once
/// \file
/// A BatchSource over samples held in memory, with the `global` sampling semantics of a
/// DistributedSampler: for tests, benchmarks and small data sets.

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringdp/train/batch_source.hpp"

namespace ringdp::train {

/// Options of an InMemorySource; pass the same values on every rank.
struct InMemoryOptions {
  /// Samples per batch of this rank (> 0).
  std::size_t batch_size = 64;
  /// Seed of the per-epoch permutations.
  std::uint64_t seed = 0;
  /// Shuffle each epoch (a permutation of 0..N-1 from (seed, epoch)); false: file order.
  bool shuffle = true;
  /// Evaluation: no shuffle, no padding; rank r takes samples r, r+k, ... so every sample
  /// is seen exactly once and shares may differ by one; all ranks still report the same
  /// steps_per_epoch(), the rank whose share ends first gets short or empty batches.
  bool evaluation = false;
};

/// Training order (PyTorch's DistributedSampler): each epoch one permutation P of 0..N-1,
/// the same on every rank, extended by wrap-around to M = k ceil(N/k) positions (the
/// extra M - N positions repeat P's first entries and are marked as padding); rank r
/// takes positions r, r+k, r+2k, ..., and its batch i is its positions [i b, (i+1) b).
/// So the union of the k ranks' batch i is batch i of a 1-rank run with batch k b, and
/// padding only ever sits at the end of a rank's last batch. Local, no MPI.
class InMemorySource final : public BatchSource {
 public:
  /// `features` is D x N (one sample per column), `labels` has N entries. `rank` in
  /// [0, ranks). Throws InvalidArgument on inconsistent sizes, N < ranks or batch 0.
  InMemorySource(Eigen::MatrixXf features, std::vector<std::int32_t> labels, int rank, int ranks,
                 InMemoryOptions options = {});

  [[nodiscard]] std::size_t steps_per_epoch() const override { return steps_; }
  void start_epoch(std::uint64_t epoch) override;
  bool next(Batch& batch) override;
  [[nodiscard]] std::vector<std::size_t> real_per_step() const override;

  /// Number of samples N.
  [[nodiscard]] std::size_t samples() const noexcept { return labels_.size(); }
  /// Sample indices this rank visits in `epoch`, in order, and how many are real.
  [[nodiscard]] std::vector<std::size_t> order(std::uint64_t epoch,
                                               std::size_t* real = nullptr) const;

 private:
  Eigen::MatrixXf features_;
  std::vector<std::int32_t> labels_;
  int rank_;
  int ranks_;
  InMemoryOptions options_;
  std::size_t steps_ = 0;
  std::vector<std::size_t> order_;
  std::size_t real_ = 0;
  std::size_t position_ = 0;
  bool started_ = false;
};

/// A portable permutation of 0..n-1 from (seed, epoch): Fisher-Yates driven by
/// SplitMix64 with an unbiased bounded draw, so every platform gives the same order.
[[nodiscard]] std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed,
                                                   std::uint64_t epoch);

}  // namespace ringdp::train
