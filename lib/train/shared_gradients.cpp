#include "shared_gradients.hpp"

#include <memory>

#include "ringdp/collectives/shared_buffer.hpp"

namespace ringdp::train::detail {

bool share_gradients(const Communicator& comm, nn::Sequential<float>& model, bool wanted) {
  if (!wanted || comm.node_layout().max_size < 2) return false;
  model.move_gradients([&comm](std::size_t count) {
    // SharedBuffer's memory starts at a page of the window: aligned for the model's kernels.
    auto buffer = std::make_shared<SharedBuffer<float>>(comm, count);
    float* data = buffer->data();
    return nn::ArenaMemory<float>{data, std::move(buffer)};
  });
  return true;
}

void release_shared_gradients(nn::Sequential<float>& model) noexcept {
  try {
    model.move_gradients({});
  } catch (...) {
    // Out of memory: the arena stays in the window, which the model keeps alive.
  }
}

}  // namespace ringdp::train::detail
