#pragma once
/// \file
/// An HDF5 classification dataset: an images dataset (N x features..., uint8 or float32)
/// and a labels dataset (N, any integer type), opened and validated on every rank.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::data {

/// Element type of the images dataset as stored in the file.
enum class ElementType { UInt8, Float32 };

/// "uint8" or "float32".
[[nodiscard]] const char* to_string(ElementType type) noexcept;

/// Paths of the two datasets inside the file.
struct DatasetNames {
  std::string images = "/train/images";
  std::string labels = "/train/labels";

  /// The training split: /train/images, /train/labels (the default).
  [[nodiscard]] static DatasetNames train() { return {}; }
  /// The test split: /test/images, /test/labels.
  [[nodiscard]] static DatasetNames test() { return {"/test/images", "/test/labels"}; }
};

/// How the ranks open and read the file.
enum class IoDriver {
  /// Each rank opens the file on its own with HDF5's default (POSIX) driver; reads are
  /// plain pread() calls. Whole chunks of an unfiltered dataset are read with HDF5's
  /// direct chunk read, straight into the caller's buffer.
  Serial,
  /// The ranks open the file together through MPI-IO (parallel HDF5, H5Pset_fapl_mpio on
  /// the dataset's communicator); each read is an independent MPI-IO read of the calling
  /// rank. Opening and destruction are then collective (MPI_File_open / MPI_File_close),
  /// and reads call MPI: a ShardedLoader reading ahead on its thread needs
  /// MPI_THREAD_MULTIPLE (it says so when MPI provides less).
  MpiIo,
};

/// "serial" or "mpiio".
[[nodiscard]] const char* to_string(IoDriver driver) noexcept;

/// How to open a dataset.
struct DatasetOptions {
  DatasetNames names;
  /// Number of classes; 0 takes the integer attribute "classes" of the labels dataset, or,
  /// when it has none, the largest label + 1.
  int classes = 0;
  /// Serial (each rank on its own) or MpiIo; the same on every rank.
  IoDriver driver = IoDriver::Serial;
};

/// A half-open range of rows [begin, begin + count).
struct RowRange {
  std::size_t begin = 0;
  std::size_t count = 0;
};

/// Rows and bytes this process has read through read_rows() (images + labels); the label
/// scan of the validation at opening is not counted.
struct IoCounters {
  std::uint64_t rows = 0;
  std::uint64_t bytes = 0;
  std::uint64_t reads = 0;  ///< number of read calls (H5Dread pairs)
};

/// An opened, validated dataset. Each rank opens the file on its own (IoDriver::Serial, the
/// default) or all ranks open it together through MPI-IO (IoDriver::MpiIo).
///
/// Construction is collective over `comm`: every rank checks the file (exists, is HDF5 and
/// not truncated, both datasets exist, images have rank >= 2 and a non-empty feature shape,
/// are uint8 or float32, labels are rank 1 and integer, have the same length, every label
/// is in [0, classes), at least as many samples as ranks) and the ranks agree, so either
/// all ranks hold a dataset or all throw the same ringdp::Error naming the file, the
/// dataset and the problem: the error of the lowest failing rank, of its class (IoError
/// for a bad file) and naming that rank. The labels are scanned in parallel, each rank its
/// 1/k slice. Ranks may open different paths (node-local copies), but every rank must see
/// the same samples, features, element type, chunk rows and stated class count; a rank
/// that sees others gets MismatchError on every rank, naming it.
///
/// After construction the object is local: reads may run on any one thread at a time
/// (they hold io::hdf5_mutex()) and, with IoDriver::Serial, make no MPI call. With
/// IoDriver::MpiIo reads are independent MPI-IO calls (no other rank takes part) and the
/// destructor is collective: destroy the dataset on every rank. Move-only.
class H5Dataset {
 public:
  H5Dataset(const Communicator& comm, std::string path, DatasetOptions options = {});
  ~H5Dataset();
  H5Dataset(H5Dataset&&) noexcept;
  H5Dataset& operator=(H5Dataset&&) noexcept;
  H5Dataset(const H5Dataset&) = delete;
  H5Dataset& operator=(const H5Dataset&) = delete;

  [[nodiscard]] const std::string& path() const noexcept;
  [[nodiscard]] const DatasetNames& names() const noexcept;
  [[nodiscard]] IoDriver driver() const noexcept;
  /// Number of samples N.
  [[nodiscard]] std::size_t size() const noexcept;
  /// Shape of one sample (the images dataset's dimensions after the first).
  [[nodiscard]] const std::vector<std::size_t>& feature_shape() const noexcept;
  /// Number of values per sample (product of feature_shape()).
  [[nodiscard]] std::size_t features() const noexcept;
  [[nodiscard]] ElementType element_type() const noexcept;
  /// Bytes of one stored sample (features() x 1 or 4).
  [[nodiscard]] std::size_t row_bytes() const noexcept;
  [[nodiscard]] int classes() const noexcept;
  /// Rows per chunk of the images dataset. For a contiguous dataset, the number of rows
  /// in about 1 MiB: the unit the loader reads by.
  [[nodiscard]] std::size_t chunk_rows() const noexcept;
  /// Number of chunks (ceil(size() / chunk_rows())).
  [[nodiscard]] std::size_t chunks() const noexcept;

  /// Reads the rows of `ranges` (sorted, not overlapping) in one selection. `images`
  /// receives the rows packed in range order (sum of counts x row_bytes() bytes), `labels`
  /// their labels. Local; throws IoError on an HDF5 failure or InvalidArgument on a bad
  /// range. Holds io::hdf5_mutex().
  void read_rows(std::span<const RowRange> ranges, std::span<std::byte> images,
                 std::span<std::int32_t> labels) const;
  /// Reads rows [begin, begin + count).
  void read_rows(std::size_t begin, std::size_t count, std::span<std::byte> images,
                 std::span<std::int32_t> labels) const;

  /// Zero-copy read of one whole chunk: when the images of rows [begin, begin +
  /// chunk_rows()) can be viewed where the file's bytes are, reads their labels into
  /// `labels` (at least chunk_rows() long) and returns a read-only view of the images as
  /// stored (chunk_rows() x row_bytes() bytes, valid while this dataset lives); otherwise
  /// reads nothing and returns an empty span, and the caller uses read_rows(). A view is
  /// possible for an unfiltered dataset chunked by whole rows in its element type, opened
  /// with IoDriver::Serial, whose chunk index is small enough to search (fewer chunks than
  /// a chunk's bytes / 200), when `begin` starts a full chunk. Counts in counters() like
  /// read_rows(). Throws IoError for a corrupt chunk or one beyond the end of the file
  /// (truncated while open). Local; takes io::hdf5_mutex() for the lookup.
  /// The view reads the file itself: the file must not be truncated or rewritten while the
  /// dataset is open. A view of a chunk since truncated away raises SIGBUS when read, and
  /// one rewritten in place shows the new bytes (reads by read_rows() would fail or copy).
  [[nodiscard]] std::span<const std::byte> map_chunk(std::size_t begin,
                                                     std::span<std::int32_t> labels) const;

  /// Local: re-opens the images dataset with an HDF5 chunk cache of `bytes` (the default
  /// holds about 4 chunks). 0 suits whole-chunk reads: HDF5 then reads an uncompressed
  /// chunk straight into the caller's buffer instead of through its cache. Holds
  /// io::hdf5_mutex(); do not call while another thread reads this dataset.
  void set_chunk_cache(std::size_t bytes);

  /// What this process has read so far (thread-safe).
  [[nodiscard]] IoCounters counters() const noexcept;

  struct Impl;  ///< implementation (HDF5 handles), defined in the library only

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringdp::data
