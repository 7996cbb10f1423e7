#pragma once
// Reusable buffers of one chunk each, for the loader. Private to the library.

#include <cstddef>
#include <memory>
#include <vector>

namespace ringdp::data::detail {

class ChunkPool;

/// Gives a buffer back to its pool (the deleter of PooledBuffer).
struct ReturnToPool {
  ChunkPool* pool = nullptr;
  void operator()(std::byte* buffer) const noexcept;
};

/// One chunk's buffer; returns to its pool when destroyed.
using PooledBuffer = std::unique_ptr<std::byte[], ReturnToPool>;

/// Buffers of `buffer_bytes` each, carved from large regions that are never returned to
/// the system while the pool lives, and advised to be backed by transparent huge pages.
///
/// Why: the first touch of fresh memory costs a page fault per 4 KiB page, and on a
/// virtual machine a fault costs microseconds: measured here, touching fresh memory runs
/// at ~0.35 GB/s, slower than reading an uncompressed chunk from the page cache (several
/// GB/s). A buffer of a chunk-sized malloc() is worse still: glibc serves it with mmap()
/// and unmaps it on free(), so every chunk read paid ~200 faults again. The pool recycles
/// each buffer (no fault after its first use), and a 2 MiB huge page needs one fault
/// where 512 small pages need 512.
///
/// Not thread-safe: one thread (the loader's producer) acquires and releases. Must
/// outlive every buffer it handed out.
class ChunkPool {
 public:
  explicit ChunkPool(std::size_t buffer_bytes);
  ~ChunkPool();
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  /// A buffer of buffer_bytes() (uninitialised, 64-byte aligned): a released one when
  /// there is one, otherwise carved from a new region.
  [[nodiscard]] PooledBuffer acquire();
  [[nodiscard]] std::size_t buffer_bytes() const noexcept { return buffer_bytes_; }
  /// Bytes of regions held (for tests and accounting).
  [[nodiscard]] std::size_t reserved_bytes() const noexcept { return reserved_; }

 private:
  friend struct ReturnToPool;
  void release(std::byte* buffer) noexcept;

  std::size_t buffer_bytes_;  // rounded up to a cache line
  std::size_t reserved_ = 0;
  std::size_t buffers_ = 0;  // buffers carved from all regions; free_ has room for all
  std::vector<std::byte*> free_;
  std::vector<void*> regions_;
};

}  // namespace ringdp::data::detail
