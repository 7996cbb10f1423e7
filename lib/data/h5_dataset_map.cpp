// H5Dataset, views: the file mapped read-only, whole unfiltered chunks viewed in place.

#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14+; older C libraries lack the name
#endif

#include "data/h5_dataset_impl.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::data {
namespace detail {

// Maps the whole file read-only when its image chunks may be viewed in place by
// map_chunk(); leaves it unmapped otherwise (reads then copy with read_rows()). Why: an
// unfiltered chunk's bytes already sit in the kernel's page cache, and reading them copies
// each byte once more into the caller's buffer (measured at 2 ranks, uncompressed: 16-20
// of the ~30 ms of CPU a rank spends reading its half of a 157 MB file). A view converts
// straight from the page cache.
//
// Conditions: direct chunk reads are possible (serial driver, unfiltered, whole-row chunks
// in the memory type), the file has no user block (chunk addresses then equal file
// offsets), and the chunk index is small enough to search. HDF5 1.10 finds a chunk's
// address (H5Dget_chunk_info_by_coord) by walking the whole index: measured ~12 us at
// 1,000 chunks and ~140 us at 16,000, against ~0.2 ns per byte the copy costs. The walk is
// allowed at most a quarter of the copy it saves: chunks() x ~10 ns <= chunk bytes x
// 0.05 ns, i.e. chunks() <= chunk bytes / 200 (4,014 chunks of 784 KiB). Mapping reserves
// address space only: pages are brought in per chunk, by map_chunk().
void map_file(H5Dataset::Impl& d) {
  const std::size_t chunk_bytes = d.chunk_rows * d.row_bytes();
  if (!d.direct_chunks || d.chunk_count() > chunk_bytes / 200) return;
  io::PlistHandle create(H5Fget_create_plist(d.file.get()));
  hsize_t userblock = 1;
  if (!create.valid() || H5Pget_userblock(create.get(), &userblock) < 0 || userblock != 0) {
    static_cast<void>(io::hdf5_error_text());
    return;
  }
  // The handle is a file descriptor only for HDF5's default POSIX driver (sec2).
  io::PlistHandle access(H5Fget_access_plist(d.file.get()));
  if (!access.valid() || H5Pget_driver(access.get()) != H5FD_SEC2) {
    static_cast<void>(io::hdf5_error_text());
    return;
  }
  void* handle = nullptr;
  if (H5Fget_vfd_handle(d.file.get(), H5P_DEFAULT, &handle) < 0 || handle == nullptr) {
    static_cast<void>(io::hdf5_error_text());
    return;
  }
  const int fd = *static_cast<int*>(handle);
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) return;
  void* map = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return;
  // No read-ahead around a touched page: the neighbouring chunks are other ranks' share.
  // (map_chunk() asks for exactly its chunk's range ahead instead.)
  static_cast<void>(madvise(map, static_cast<std::size_t>(st.st_size), MADV_RANDOM));
  d.map = static_cast<const std::byte*>(map);
  d.map_bytes = static_cast<std::size_t>(st.st_size);
  d.fd = fd;
}

}  // namespace detail

std::span<const std::byte> H5Dataset::map_chunk(std::size_t begin,
                                                std::span<std::int32_t> labels) const {
  const Impl& d = *impl_;
  if (d.map == nullptr || begin % d.chunk_rows != 0 || begin + d.chunk_rows > d.n) return {};
  if (labels.size() < d.chunk_rows) {
    throw InvalidArgument(fmt::format("{}: label buffer too small for {} rows",
                                      d.where(d.names.labels), d.chunk_rows));
  }
  const std::string where = d.where(d.names.images);
  const std::size_t bytes = d.chunk_rows * d.row_bytes();
  haddr_t address = HADDR_UNDEF;
  {
    std::lock_guard lock(io::hdf5_mutex());
    io::silence_hdf5();
    const std::vector<hsize_t> offset = detail::chunk_offset(d, begin);
    unsigned filters = 0;
    hsize_t stored = 0;
    io::h5_check(
        H5Dget_chunk_info_by_coord(d.images.get(), offset.data(), &filters, &address, &stored),
        where, fmt::format("cannot locate the chunk of row {}", begin));
    detail::require_whole_chunk(where, begin, stored, bytes);
    if (filters != 0 || address == HADDR_UNDEF) {
      throw IoError(fmt::format(
          "{}: the chunk of row {} is marked filtered or has no address: the file is corrupt",
          where, begin));
    }
    const RowRange range{begin, d.chunk_rows};
    detail::read_labels(d, std::span<const RowRange>(&range, 1), d.chunk_rows, labels);
  }
  // The file may have shrunk since it was opened: touching a mapped page beyond its end
  // would kill the process (SIGBUS), so the chunk must lie inside the file as it is now.
  struct stat st {};
  // (Compared without adding: a corrupt address near 2^64 would wrap around.)
  const std::uint64_t file_bytes =
      fstat(d.fd, &st) != 0
          ? 0
          : std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), d.map_bytes);
  if (address > file_bytes || bytes > file_bytes - address) {
    throw IoError(
        fmt::format("{}: the chunk of row {} lies beyond the end of the file ({} "
                    "bytes): was it truncated while open?",
                    where, begin, st.st_size));
  }
  // Brings the chunk's pages in with one call instead of a fault per few pages (Linux
  // 5.14+; where unsupported, the pages fault in when first read). Any other failure
  // means the pages cannot be read. WILLNEED first: under MADV_RANDOM a page not in the
  // page cache would otherwise be read from disk one 4 KiB page at a time (measured on
  // ext4 with the file out of the cache, 16 chunks of 784 KiB: 2.8-4.6 s without it,
  // 24-30 ms with it); WILLNEED starts one read of exactly the chunk's range.
  const std::byte* first = d.map + address;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto aligned = reinterpret_cast<std::uintptr_t>(first) / page * page;
  const std::size_t span = reinterpret_cast<std::uintptr_t>(first) + bytes - aligned;
  static_cast<void>(madvise(reinterpret_cast<void*>(aligned), span, MADV_WILLNEED));
  if (madvise(reinterpret_cast<void*>(aligned), span, MADV_POPULATE_READ) != 0 && errno != EINVAL) {
    throw IoError(fmt::format("{}: cannot read the chunk of row {} from the file ({})", where,
                              begin, std::strerror(errno)));
  }
  impl_->count_read(d.chunk_rows);
  return {first, bytes};
}

}  // namespace ringdp::data
