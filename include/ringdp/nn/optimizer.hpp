#pragma once
/// \file
/// The optimizer interface: element-wise updates of the flat parameter arena from the flat
/// gradient arena, with state that checkpoints can save and restore.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringdp/nn/thread_pool.hpp"

namespace ringdp::nn {

/// A named view of one optimizer state array (same length and layout as the arena). Read
/// it to save a checkpoint; write into it (then set_step_count()) to restore one.
template <class T>
struct StateArray {
  std::string name;  ///< e.g. "momentum", "adam.m", "adam.v"
  std::span<T> data;
};

/// Base of SGD and Adam. The learning rate is an argument of step() so that the schedule
/// stays with the trainer. Updates are element-wise and deterministic, so replicas that
/// hold the same parameters, gradients and state stay bit-identical. An update is one
/// vectorised pass over the arena (parameters, gradients and state read once, written
/// once); with a ThreadPool (set_thread_pool()) each thread takes one contiguous block of
/// it. Element-wise, so the result is the same bits for every thread count. Local, no MPI;
/// not thread-safe.
template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// "sgd" or "adam".
  [[nodiscard]] virtual std::string kind() const = 0;

  /// One update of `parameters` from `gradients` with `learning_rate`; both spans must
  /// have size() elements (throws InvalidArgument otherwise, or for a negative or
  /// non-finite rate). Increments step_count() first.
  void step(std::span<T> parameters, std::span<const T> gradients, double learning_rate);

  /// Number of parameters this optimizer was made for.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Number of step() calls so far (Adam's bias correction uses it; checkpoints save it).
  [[nodiscard]] std::int64_t step_count() const noexcept { return step_count_; }
  /// Restores the step count from a checkpoint; throws InvalidArgument when negative.
  void set_step_count(std::int64_t steps);

  /// Views of every state array, in a fixed order (empty for plain SGD).
  [[nodiscard]] virtual std::vector<StateArray<T>> state() = 0;
  /// Zeroes the state arrays and the step count.
  void reset();

  /// The compute threads step() may use (nullptr, the default: the calling thread only).
  /// The pool must outlive its use by the optimizer.
  void set_thread_pool(ThreadPool* pool) noexcept { pool_ = pool; }
  [[nodiscard]] ThreadPool* thread_pool() const noexcept { return pool_; }

 protected:
  explicit Optimizer(std::size_t size) : size_(size) {}
  /// The update of elements [begin, end) of the arena (and of the state arrays); `step` is
  /// the already incremented step count (1 on the first call). Called once per thread on
  /// disjoint ranges, possibly at the same time: it may write only those elements.
  virtual void update(T* parameters, const T* gradients, std::size_t begin, std::size_t end,
                      double learning_rate, std::int64_t step) = 0;

 private:
  std::size_t size_;
  ThreadPool* pool_ = nullptr;
  std::int64_t step_count_ = 0;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

}  // namespace ringdp::nn
