// H5Dataset, reads: rows by hyperslab selection, whole chunks by one direct chunk read.

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "data/h5_dataset_impl.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::data {
namespace detail {
namespace {

using io::h5_check;

// Selects the rows of `ranges` in `space`; `start` and `count` hold the dataset's rank,
// their entries after the first set to 0 and to the full extent.
void select_rows(hid_t space, std::span<const RowRange> ranges, std::vector<hsize_t>& start,
                 std::vector<hsize_t>& count, const std::string& where) {
  bool first = true;
  for (const RowRange& r : ranges) {
    if (r.count == 0) continue;
    start[0] = r.begin;
    count[0] = r.count;
    h5_check(H5Sselect_hyperslab(space, first ? H5S_SELECT_SET : H5S_SELECT_OR, start.data(),
                                 nullptr, count.data(), nullptr),
             where, "cannot select rows");
    first = false;
  }
}

// Reads the images of `ranges` with one direct chunk read when they are exactly one whole
// chunk and the dataset allows it (see Impl::direct_chunks); returns false otherwise, and
// the caller reads through a hyperslab. Why: for an unfiltered chunk, H5Dread still walks
// the selection machinery and, when the chunk fits its chunk cache, copies it through the
// cache; H5Dread_chunk is one index lookup and one read into `images`. The bytes are the
// stored bytes, which equal the memory type's (checked at opening), so the rows are
// bit-identical to what H5Dread returns. The last chunk of the dataset is usually partial
// (and stored as a full chunk, larger than the caller's buffer): it takes the hyperslab.
bool read_whole_chunk(const H5Dataset::Impl& d, std::span<const RowRange> ranges, std::size_t total,
                      std::span<std::byte> images) {
  if (!d.direct_chunks || total != d.chunk_rows) return false;
  const RowRange* whole = nullptr;
  for (const RowRange& r : ranges) {
    if (r.count == 0) continue;
    if (whole != nullptr) return false;
    whole = &r;
  }
  if (whole == nullptr || whole->begin % d.chunk_rows != 0) return false;
  const std::string where = d.where(d.names.images);
  const std::size_t bytes = d.chunk_rows * d.row_bytes();
  const std::vector<hsize_t> offset = chunk_offset(d, whole->begin);
  // The chunk's size in the file bounds what H5Dread_chunk writes.
  hsize_t stored = 0;
  h5_check(H5Dget_chunk_storage_size(d.images.get(), offset.data(), &stored), where,
           fmt::format("cannot locate the chunk of row {}", whole->begin));
  require_whole_chunk(where, whole->begin, stored, bytes);
  std::uint32_t filters = 0;
  h5_check(H5Dread_chunk(d.images.get(), H5P_DEFAULT, offset.data(), &filters, images.data()),
           where, fmt::format("cannot read {} rows from row {}", total, whole->begin));
  return true;
}

// The images of `ranges` through one selection holding every range (HDF5 then visits each
// chunk once per call, whatever the number of ranges in it).
void read_selected_images(const H5Dataset::Impl& d, std::span<const RowRange> ranges,
                          std::size_t total, std::span<std::byte> images) {
  const std::string where = d.where(d.names.images);
  io::SpaceHandle space(h5_check(H5Dget_space(d.images.get()), where, "no space"));
  std::vector<hsize_t> start(d.shape.size() + 1, 0);
  std::vector<hsize_t> count(d.shape.size() + 1);
  std::copy(d.shape.begin(), d.shape.end(), count.begin() + 1);
  select_rows(space.get(), ranges, start, count, where);
  const hsize_t dims[2] = {total, d.features};
  io::SpaceHandle memory(H5Screate_simple(2, dims, nullptr));
  const hid_t memory_type = d.type == ElementType::UInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
  h5_check(
      H5Dread(d.images.get(), memory_type, memory.get(), space.get(), H5P_DEFAULT, images.data()),
      where, fmt::format("cannot read {} rows from row {}", total, ranges[0].begin));
}

}  // namespace

void read_labels(const H5Dataset::Impl& d, std::span<const RowRange> ranges, std::size_t total,
                 std::span<std::int32_t> labels) {
  const std::string where = d.where(d.names.labels);
  io::SpaceHandle space(h5_check(H5Dget_space(d.labels.get()), where, "no space"));
  std::vector<hsize_t> start(1, 0);
  std::vector<hsize_t> count(1);
  select_rows(space.get(), ranges, start, count, where);
  const hsize_t dims = total;
  io::SpaceHandle memory(H5Screate_simple(1, &dims, nullptr));
  h5_check(H5Dread(d.labels.get(), H5T_NATIVE_INT32, memory.get(), space.get(), H5P_DEFAULT,
                   labels.data()),
           where, fmt::format("cannot read {} labels from row {}", total, ranges[0].begin));
}

std::vector<hsize_t> chunk_offset(const H5Dataset::Impl& d, std::size_t row) {
  std::vector<hsize_t> offset(d.shape.size() + 1, 0);
  offset[0] = row;
  return offset;
}

void require_whole_chunk(const std::string& where, std::size_t row, hsize_t stored,
                         std::size_t bytes) {
  // A corrupted index could claim more than a buffer holds, or point at bytes that are
  // not this chunk's.
  if (stored != bytes) {
    throw IoError(fmt::format(
        "{}: the chunk of row {} holds {} bytes in the file, not {}: the file is corrupt", where,
        row, stored, bytes));
  }
}

}  // namespace detail

void H5Dataset::read_rows(std::size_t begin, std::size_t count, std::span<std::byte> images,
                          std::span<std::int32_t> labels) const {
  const RowRange range{begin, count};
  read_rows(std::span<const RowRange>(&range, 1), images, labels);
}

void H5Dataset::read_rows(std::span<const RowRange> ranges, std::span<std::byte> images,
                          std::span<std::int32_t> labels) const {
  const Impl& d = *impl_;
  std::size_t total = 0;
  std::size_t previous_end = 0;
  for (const RowRange& r : ranges) {
    if (r.begin < previous_end || r.begin + r.count > d.n) {
      throw InvalidArgument(
          fmt::format("{}: read of rows [{}, {}) is out of order or beyond the {} samples",
                      d.where(d.names.images), r.begin, r.begin + r.count, d.n));
    }
    previous_end = r.begin + r.count;
    total += r.count;
  }
  if (images.size() < total * d.row_bytes() || labels.size() < total) {
    throw InvalidArgument(
        fmt::format("{}: output buffers too small for {} rows", d.where(d.names.images), total));
  }
  if (total == 0) return;

  std::lock_guard lock(io::hdf5_mutex());
  io::silence_hdf5();
  // Images: one direct read when the ranges are exactly one whole chunk, otherwise one
  // selection. Labels: always a selection (4 bytes a row; no direct read needed).
  if (!detail::read_whole_chunk(d, ranges, total, images)) {
    detail::read_selected_images(d, ranges, total, images);
  }
  detail::read_labels(d, ranges, total, labels);
  impl_->count_read(total);
}

}  // namespace ringdp::data
