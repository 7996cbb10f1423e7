#pragma once
// The trainer's gradient arena in node-shared memory. Private to the library.
//
// When ranks of the reducer's communicator share a node, the node-local allreduce (shm, and
// hier inside each node) reads every rank's gradients where they lie and writes the sums
// straight into every rank's arena, if the arena is a SharedBuffer of that communicator;
// otherwise each bucket is staged through the window (copied in and out). nn knows nothing
// of MPI: the model takes the memory through its allocation hook (move_gradients()).

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/sequential.hpp"

namespace ringdp::train::detail {

/// Collective over `comm`. When `wanted` and some node of `comm` holds more than one rank
/// (the same answer on every rank), moves `model`'s gradient arena into a SharedBuffer of
/// `comm`, contents kept, and returns true; otherwise leaves the model alone and returns
/// false. The buffer lives as long as the model keeps the arena there: move it back with
/// release_shared_gradients() before `comm`'s ranks go their own ways (the window is freed
/// collectively when its last buffer goes). Throws MpiError when the window cannot grow.
bool share_gradients(const Communicator& comm, nn::Sequential<float>& model, bool wanted);

/// Local: moves the gradient arena back to ordinary memory (contents kept). Never throws;
/// if ordinary memory cannot be had, the arena stays where it is.
void release_shared_gradients(nn::Sequential<float>& model) noexcept;

}  // namespace ringdp::train::detail
