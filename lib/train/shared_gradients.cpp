#include "shared_gradients.hpp"

#include <memory>

#include "ringdp/collectives/shared_buffer.hpp"

namespace ringdp::train::detail {

SharedGradients::SharedGradients(const Communicator& comm, nn::Sequential<float>& model,
                                 bool wanted) {
  if (!wanted || comm.node_layout().max_size < 2) return;
  model.move_gradients([&comm](std::size_t count) {
    // A SharedBuffer starts at a page of the window: aligned for the model's kernels.
    auto buffer = std::make_shared<SharedBuffer<float>>(comm, count);
    float* data = buffer->data();
    return nn::ArenaMemory<float>{data, std::move(buffer)};
  });
  model_ = &model;
}

SharedGradients::~SharedGradients() {
  if (model_ == nullptr) return;
  try {
    model_->move_gradients({});
  } catch (...) {
    // Out of memory: the arena stays in the window (see the declaration).
  }
}

}  // namespace ringdp::train::detail
