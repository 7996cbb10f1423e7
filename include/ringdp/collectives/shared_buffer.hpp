#pragma once
/// \file
/// SharedBuffer: memory that the ranks of a node can read and write directly, so that the
/// node-local collectives need no copy-in.
///
/// \code
///   ringdp::SharedBuffer<float> gradients(comm, n);   // collective: every rank, same n
///   fill(gradients.span());
///   ringdp::allreduce(comm, gradients.span(), ringdp::ReduceOp::Average);  // no copy-in
/// \endcode
///
/// The memory lies in the communicator's node-shared window (MPI_Win_allocate_shared over
/// the ranks of a node). An allreduce (Algorithm::Shm, Hierarchical, or Auto when it picks
/// them) on a span that lies in a SharedBuffer on every rank of the node reads the other
/// ranks' inputs where they are and writes the result straight into every rank's buffer;
/// a span of ordinary memory works too, staged through the window. Any other algorithm
/// accepts the span like any memory.

#include <cstddef>
#include <memory>
#include <span>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/types.hpp"

namespace ringdp {

namespace detail {
class WindowGeneration;

/// One allocation in a node-shared window (the untyped part of SharedBuffer).
class SharedBlock {
 public:
  SharedBlock() = default;
  /// Collective over `comm`: see SharedBuffer's constructor.
  SharedBlock(const Communicator& comm, std::size_t bytes);
  ~SharedBlock();
  SharedBlock(SharedBlock&& other) noexcept;
  SharedBlock& operator=(SharedBlock&& other) noexcept;
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;

  [[nodiscard]] void* data() const noexcept { return data_; }

 private:
  void release() noexcept;
  std::shared_ptr<WindowGeneration> generation_;
  void* data_ = nullptr;
};
}  // namespace detail

/// `count` elements of T on this rank, in memory the other ranks of its node can reach.
/// Move-only. Contents start unspecified (like std::make_unique_for_overwrite).
template <Reducible T>
class SharedBuffer {
 public:
  /// Collective over `comm`: every rank passes the same count (otherwise every rank throws
  /// the same MismatchError naming the ranks that differ). Grows the communicator's window
  /// when it has no room. Throws MpiError when the window cannot be made (e.g. the
  /// shared-memory file system is full).
  SharedBuffer(const Communicator& comm, std::size_t count)
      : block_(comm, count * sizeof(T)), count_(count) {}

  /// Local: the memory goes back to the window, which frees it at a later allocation (or
  /// with the communicator) once no rank of the node uses it. Destroy SharedBuffers in the
  /// same order on every rank if they outlive their Communicator: the last one of a window
  /// frees it, collectively over the node.
  ~SharedBuffer() = default;
  SharedBuffer(SharedBuffer&&) noexcept = default;
  SharedBuffer& operator=(SharedBuffer&&) noexcept = default;

  /// This rank's elements.
  [[nodiscard]] std::span<T> span() const noexcept { return {data(), count_}; }
  [[nodiscard]] T* data() const noexcept { return static_cast<T*>(block_.data()); }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }

 private:
  detail::SharedBlock block_;
  std::size_t count_ = 0;
};

}  // namespace ringdp
