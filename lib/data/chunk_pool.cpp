#include "data/chunk_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace ringdp::data::detail {
namespace {

constexpr std::size_t kLine = 64;
constexpr std::size_t kHugePage = std::size_t{2} << 20;
// Regions of at least 8 MiB: with chunks of ~1 MiB the space lost at a region's end (less
// than one buffer) stays a small fraction, and the regions are few.
constexpr std::size_t kMinRegion = std::size_t{8} << 20;

std::size_t round_up(std::size_t v, std::size_t unit) { return (v + unit - 1) / unit * unit; }

}  // namespace

void ReturnToPool::operator()(std::byte* buffer) const noexcept {
  if (pool != nullptr && buffer != nullptr) pool->release(buffer);
}

ChunkPool::ChunkPool(std::size_t buffer_bytes)
    : buffer_bytes_(round_up(buffer_bytes == 0 ? 1 : buffer_bytes, kLine)) {}

ChunkPool::~ChunkPool() {
  for (void* region : regions_) std::free(region);
}

PooledBuffer ChunkPool::acquire() {
  if (free_.empty()) {
    // A region aligned to and sized in huge pages, so that the kernel can back all of it
    // with them (madvise is only advice: without transparent huge pages it is a no-op).
    const std::size_t bytes = round_up(std::max(kMinRegion, buffer_bytes_), kHugePage);
    void* region = std::aligned_alloc(kHugePage, bytes);
    if (region == nullptr) throw std::bad_alloc();
    static_cast<void>(madvise(region, bytes, MADV_HUGEPAGE));
    regions_.push_back(region);
    reserved_ += bytes;
    auto* base = static_cast<std::byte*>(region);
    const std::size_t count = bytes / buffer_bytes_;
    // Room for every buffer of every region, so that release() never allocates.
    buffers_ += count;
    free_.reserve(buffers_);
    // Handed out from the region's start first (the back of free_ is taken first).
    for (std::size_t n = count; n-- > 0;) free_.push_back(base + n * buffer_bytes_);
  }
  std::byte* buffer = free_.back();
  free_.pop_back();
  return PooledBuffer(buffer, ReturnToPool{this});
}

void ChunkPool::release(std::byte* buffer) noexcept {
  // free_ was reserved for every buffer of every region, so this never allocates.
  free_.push_back(buffer);
}

}  // namespace ringdp::data::detail
