// SharedBuffer's untyped part: an allocation in the communicator's node-shared window.

#include "ringdp/collectives/shared_buffer.hpp"

#include <utility>

#include "comm/shared_window.hpp"
#include "comm/wait.hpp"

namespace ringdp::detail {

SharedBlock::SharedBlock(const Communicator& comm, std::size_t bytes) {
  const CollectiveScope scope(comm, "SharedBuffer");
  SharedPlace place = allocate_shared(comm, bytes);
  generation_ = std::move(place.generation);
  data_ = place.data;
}

SharedBlock::~SharedBlock() { release(); }

SharedBlock::SharedBlock(SharedBlock&& other) noexcept
    : generation_(std::move(other.generation_)), data_(std::exchange(other.data_, nullptr)) {}

SharedBlock& SharedBlock::operator=(SharedBlock&& other) noexcept {
  if (this != &other) {
    release();
    generation_ = std::move(other.generation_);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

void SharedBlock::release() noexcept {
  if (generation_) release_shared(*generation_);
  generation_.reset();  // the last reference frees the window (collective over the node)
  data_ = nullptr;
}

}  // namespace ringdp::detail
