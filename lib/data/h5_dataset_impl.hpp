#pragma once
// The inside of H5Dataset, shared by its parts: opening and validation
// (h5_dataset_open.cpp), reads (h5_dataset_read.cpp), views of whole chunks in the file's
// mapping (h5_dataset_map.cpp); h5_dataset.cpp holds the collective constructor and the
// accessors. Private to the library.

#include <fmt/format.h>
#include <hdf5.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/data/h5_dataset.hpp"
#include "ringdp/io/h5_handle.hpp"

namespace ringdp::data {

struct H5Dataset::Impl {
  std::string path;
  DatasetNames names;
  IoDriver driver = IoDriver::Serial;
  io::FileHandle file;
  io::DatasetHandle images;
  io::DatasetHandle labels;
  std::size_t n = 0;
  std::vector<std::size_t> shape;
  std::size_t features = 0;
  ElementType type = ElementType::UInt8;
  int classes = 0;
  std::size_t chunk_rows = 1;
  // Whole chunks may be read with H5Dread_chunk: the images are chunked by whole rows
  // (the chunk spans every feature dimension), unfiltered, stored in the memory type, and
  // the driver is serial (HDF5 1.10 has no direct chunk read through MPI-IO).
  bool direct_chunks = false;
  // The file mapped read-only, when whole chunks may be viewed in place (map_chunk()):
  // see detail::map_file(). `fd` is HDF5's own descriptor of the file (valid while `file`
  // is open).
  const std::byte* map = nullptr;
  std::size_t map_bytes = 0;
  int fd = -1;
  std::atomic<std::uint64_t> rows{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> reads{0};

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Unmaps the file and closes the handles (under io::hdf5_mutex(): closing is an HDF5
  // call).
  ~Impl();

  [[nodiscard]] std::size_t row_bytes() const {
    return features * (type == ElementType::UInt8 ? 1 : 4);
  }
  [[nodiscard]] std::size_t chunk_count() const { return (n + chunk_rows - 1) / chunk_rows; }
  // One read of `count` rows (images and labels) in counters().
  void count_read(std::size_t count) {
    rows += count;
    bytes += count * (row_bytes() + sizeof(std::int32_t));
    reads += 1;
  }
  [[nodiscard]] std::string where(const std::string& dataset) const {
    return fmt::format("'{}': dataset '{}'", path, dataset);
  }
};

namespace detail {

/// The checks that can be made without opening the file (exists, not a directory).
/// Throws IoError.
void check_path(const H5Dataset::Impl& d);

/// The part of opening that runs on each rank: every check that needs only this rank's
/// view of the file (see H5Dataset), and the chunk cache and mapping set up. With MPI-IO,
/// H5Fopen inside is collective over `comm`. Throws IoError naming the file, the dataset
/// and the problem. Takes io::hdf5_mutex().
void open_local(H5Dataset::Impl& d, const Communicator& comm);

/// The smallest and largest label of a range of rows.
struct LabelRange {
  long long lowest = std::numeric_limits<long long>::max();
  long long highest = std::numeric_limits<long long>::min();
};

/// Reads labels [begin, end) in pieces; returns their range. Throws IoError at the first
/// label outside [0, classes) when classes is known (> 0), or when a read fails. Takes
/// io::hdf5_mutex() for each piece.
[[nodiscard]] LabelRange scan_labels(const H5Dataset::Impl& d, std::size_t begin, std::size_t end);

/// Maps the whole file read-only when its image chunks may be viewed in place by
/// H5Dataset::map_chunk(); leaves it unmapped otherwise. The caller holds io::hdf5_mutex().
void map_file(H5Dataset::Impl& d);

/// The labels of `ranges` (`total` rows in all) into `labels`. The caller holds
/// io::hdf5_mutex().
void read_labels(const H5Dataset::Impl& d, std::span<const RowRange> ranges, std::size_t total,
                 std::span<std::int32_t> labels);

/// The offset of the chunk that starts at row `row` of the images dataset.
[[nodiscard]] std::vector<hsize_t> chunk_offset(const H5Dataset::Impl& d, std::size_t row);

/// An unfiltered chunk must hold exactly one chunk of rows in the file: throws IoError
/// naming the row when `stored` (its size in the file) is not `bytes`.
void require_whole_chunk(const std::string& where, std::size_t row, hsize_t stored,
                         std::size_t bytes);

}  // namespace detail
}  // namespace ringdp::data
