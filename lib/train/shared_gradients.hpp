#pragma once
// The trainer's gradient arena in node-shared memory. Private to the library.
//
// When ranks of the reducer's communicator share a node, the node-local allreduce (shm, and
// hier inside each node) reads every rank's gradients where they lie and writes the sums
// straight into every rank's arena, if the arena is a SharedBuffer of that communicator;
// otherwise each bucket is staged through the window (copied in and out). The sums are the
// same bits either way (the same owners reduce in the same rank order). nn knows nothing of
// MPI: the model takes the memory through its allocation hook (move_gradients()).

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/sequential.hpp"

namespace ringdp::train::detail {

/// Keeps a model's gradient arena in a SharedBuffer of a communicator for its lifetime.
class SharedGradients {
 public:
  /// Collective over `comm`. When `wanted` and some node of `comm` holds more than one rank
  /// (the same answer on every rank), moves `model`'s gradient arena into a SharedBuffer of
  /// `comm`, contents kept; otherwise leaves the model alone. Throws MpiError when the
  /// window cannot grow (the model is then unchanged).
  SharedGradients(const Communicator& comm, nn::Sequential<float>& model, bool wanted);
  /// Local: moves the arena back to ordinary memory, contents kept (if that memory cannot
  /// be had, the arena stays in the window, which the model then keeps alive). Destroy it
  /// while `comm` lives, and on every rank alike. Never throws.
  ~SharedGradients();
  SharedGradients(const SharedGradients&) = delete;
  SharedGradients& operator=(const SharedGradients&) = delete;

  /// True when the arena is in shared memory.
  [[nodiscard]] bool active() const noexcept { return model_ != nullptr; }

 private:
  nn::Sequential<float>* model_ = nullptr;  // null: nothing moved
};

}  // namespace ringdp::train::detail
