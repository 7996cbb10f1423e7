#include "ringdp/data/h5_dataset.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mpi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14+; older C libraries lack the name
#endif

#include "data/h5_handle.hpp"
#include "data/h5_storage.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/data/hdf5_lock.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::data {

using detail::h5_check;

const char* to_string(IoDriver driver) noexcept {
  switch (driver) {
    case IoDriver::Serial:
      return "serial";
    case IoDriver::MpiIo:
      return "mpiio";
  }
  return "unknown";
}

const char* to_string(ElementType type) noexcept {
  switch (type) {
    case ElementType::UInt8:
      return "uint8";
    case ElementType::Float32:
      return "float32";
  }
  return "unknown";
}

struct H5Dataset::Impl {
  std::string path;
  DatasetNames names;
  IoDriver driver = IoDriver::Serial;
  detail::FileHandle file;
  detail::DatasetHandle images;
  detail::DatasetHandle labels;
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
  // see map_file(). `fd` is HDF5's own descriptor of the file (valid while `file` is open).
  const std::byte* map = nullptr;
  std::size_t map_bytes = 0;
  int fd = -1;
  std::atomic<std::uint64_t> rows{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> reads{0};

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Closing handles is an HDF5 call: do it under the lock.
  ~Impl() {
    if (map != nullptr) munmap(const_cast<std::byte*>(map), map_bytes);
    std::lock_guard lock(hdf5_mutex());
    labels.reset();
    images.reset();
    file.reset();
  }

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

namespace {

constexpr std::size_t kContiguousReadBytes = std::size_t{1} << 20;
constexpr std::size_t kLabelScanPiece = std::size_t{1} << 20;

std::string describe_type(hid_t type) {
  const std::size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("{}-bit {} integer", size * 8,
                         H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed");
    case H5T_FLOAT:
      return fmt::format("{}-bit float", size * 8);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    default:
      return fmt::format("HDF5 type class {}", static_cast<int>(H5Tget_class(type)));
  }
}

std::vector<std::size_t> extent(hid_t dataset, const std::string& where) {
  detail::SpaceHandle space(h5_check(H5Dget_space(dataset), where, "cannot read its dataspace"));
  const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), where, "cannot read its rank");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where,
           "cannot read its shape");
  return {dims.begin(), dims.end()};
}

std::string shape_text(const std::vector<std::size_t>& dims) {
  return fmt::format("({})", fmt::join(dims, " x "));
}

// Opens `name`, first checking each group on the way, so that a missing dataset is named
// as missing rather than reported as HDF5's generic "unable to open object".
detail::DatasetHandle open_dataset(hid_t file, const std::string& name, const std::string& where,
                                   hid_t access) {
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = name.find('/', pos + 1);
    const std::string prefix = name.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    const htri_t exists = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    if (exists <= 0) {
      static_cast<void>(detail::hdf5_error_text());  // clear the stack
      throw IoError(fmt::format("{}: not found (no object '{}' in the file)", where, prefix));
    }
  }
  const hid_t id = H5Dopen2(file, name.c_str(), access);
  if (id < 0) detail::throw_hdf5_error(where, "exists but cannot be opened as a dataset");
  return detail::DatasetHandle(id);
}

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
// Caller holds hdf5_mutex().
void map_file(H5Dataset::Impl& d) {
  const std::size_t chunk_bytes = d.chunk_rows * d.row_bytes();
  if (!d.direct_chunks || d.chunk_count() > chunk_bytes / 200) return;
  detail::PlistHandle create(H5Fget_create_plist(d.file.get()));
  hsize_t userblock = 1;
  if (!create.valid() || H5Pget_userblock(create.get(), &userblock) < 0 || userblock != 0) {
    static_cast<void>(detail::hdf5_error_text());
    return;
  }
  // The handle is a file descriptor only for HDF5's default POSIX driver (sec2).
  detail::PlistHandle access(H5Fget_access_plist(d.file.get()));
  if (!access.valid() || H5Pget_driver(access.get()) != H5FD_SEC2) {
    static_cast<void>(detail::hdf5_error_text());
    return;
  }
  void* handle = nullptr;
  if (H5Fget_vfd_handle(d.file.get(), H5P_DEFAULT, &handle) < 0 || handle == nullptr) {
    static_cast<void>(detail::hdf5_error_text());
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

// The checks that can be made without opening the file.
void check_path(const H5Dataset::Impl& d) {
  std::error_code ec;
  if (!std::filesystem::exists(d.path, ec)) {
    throw IoError(fmt::format("'{}': no such file", d.path));
  }
  if (std::filesystem::is_directory(d.path, ec)) {
    throw IoError(fmt::format("'{}': is a directory, not an HDF5 file", d.path));
  }
}

// The part of opening that runs on each rank: every check that needs only this rank's view
// of the file. With MPI-IO, H5Fopen inside is collective over `comm`.
void open_local(H5Dataset::Impl& d, const Communicator& comm) {
  const int ranks = comm.size();
  std::lock_guard lock(hdf5_mutex());
  detail::silence_hdf5();
  check_path(d);
  detail::PlistHandle file_access(H5Pcreate(H5P_FILE_ACCESS));
  if (d.driver == IoDriver::MpiIo) {
    h5_check(H5Pset_fapl_mpio(file_access.get(), comm.native(), MPI_INFO_NULL),
             fmt::format("'{}'", d.path), "cannot use MPI-IO (HDF5 without parallel support?)");
  }
  const hid_t file = H5Fopen(d.path.c_str(), H5F_ACC_RDONLY, file_access.get());
  if (file < 0) {
    detail::throw_hdf5_error(fmt::format("'{}'", d.path),
                             "cannot be opened as HDF5 (not an HDF5 file, or truncated)");
  }
  d.file = detail::FileHandle(file);

  const std::string images_where = d.where(d.names.images);
  const std::string labels_where = d.where(d.names.labels);

  // Images: N x features..., uint8 or float32.
  detail::PlistHandle access(H5Pcreate(H5P_DATASET_ACCESS));
  d.images = open_dataset(file, d.names.images, images_where, access.get());
  const std::vector<std::size_t> dims = extent(d.images.get(), images_where);
  if (dims.size() < 2) {
    throw IoError(fmt::format("{}: must have rank >= 2 (samples x features), found rank {} {}",
                              images_where, dims.size(), shape_text(dims)));
  }
  d.n = dims[0];
  d.shape.assign(dims.begin() + 1, dims.end());
  // A corrupted header may claim any extent: the products below must not wrap around, or
  // every later size (buffers, byte counts) would be computed from a wrong, small number.
  constexpr std::size_t kMaxBytes = std::numeric_limits<std::size_t>::max() / 8;
  d.features = 1;
  for (std::size_t v : d.shape) {
    if (v != 0 && d.features > kMaxBytes / v) {
      throw IoError(fmt::format("{}: shape {} is too large (the values per sample overflow)",
                                images_where, shape_text(dims)));
    }
    d.features *= v;
  }
  if (d.features == 0) {
    throw IoError(fmt::format("{}: empty feature shape {}", images_where, shape_text(dims)));
  }
  {
    detail::TypeHandle type(h5_check(H5Dget_type(d.images.get()), images_where, "no type"));
    const H5T_class_t cls = H5Tget_class(type.get());
    const std::size_t size = H5Tget_size(type.get());
    if (cls == H5T_INTEGER && size == 1 && H5Tget_sign(type.get()) == H5T_SGN_NONE) {
      d.type = ElementType::UInt8;
    } else if (cls == H5T_FLOAT && size == 4) {
      d.type = ElementType::Float32;
    } else {
      throw IoError(fmt::format("{}: element type {} is not supported (uint8 or float32)",
                                images_where, describe_type(type.get())));
    }
  }

  if (d.n > kMaxBytes / d.row_bytes()) {
    throw IoError(fmt::format("{}: shape {} is too large (its size in bytes overflows)",
                              images_where, shape_text(dims)));
  }

  // Labels: N integers.
  d.labels = open_dataset(file, d.names.labels, labels_where, H5P_DEFAULT);
  const std::vector<std::size_t> label_dims = extent(d.labels.get(), labels_where);
  if (label_dims.size() != 1) {
    throw IoError(fmt::format("{}: must have rank 1 (one label per sample), found rank {} {}",
                              labels_where, label_dims.size(), shape_text(label_dims)));
  }
  {
    detail::TypeHandle type(h5_check(H5Dget_type(d.labels.get()), labels_where, "no type"));
    if (H5Tget_class(type.get()) != H5T_INTEGER) {
      throw IoError(fmt::format("{}: labels must be integers, found {}", labels_where,
                                describe_type(type.get())));
    }
  }
  if (label_dims[0] != d.n) {
    throw IoError(fmt::format("'{}': dataset '{}' has {} labels but dataset '{}' has {} samples",
                              d.path, d.names.labels, label_dims[0], d.names.images, d.n));
  }
  if (d.n < static_cast<std::size_t>(ranks)) {
    throw IoError(fmt::format("{}: {} samples, fewer than the {} ranks", images_where, d.n, ranks));
  }
  // Before anything reads or allocates by the extents: are they backed by the file?
  detail::require_fully_stored(d.images.get(), images_where);
  detail::require_fully_stored(d.labels.get(), labels_where);

  // Chunking: the unit the loader reads by.
  detail::PlistHandle create(h5_check(H5Dget_create_plist(d.images.get()), images_where,
                                      "cannot read its creation properties"));
  if (H5Pget_layout(create.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    h5_check(H5Pget_chunk(create.get(), static_cast<int>(chunk.size()), chunk.data()), images_where,
             "cannot read its chunk shape");
    d.chunk_rows = std::max<std::size_t>(1, chunk[0]);
    const bool whole_rows = std::equal(chunk.begin() + 1, chunk.end(), dims.begin() + 1);
    detail::TypeHandle stored(h5_check(H5Dget_type(d.images.get()), images_where, "no type"));
    const hid_t memory = d.type == ElementType::UInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    // A chunk longer than the dataset (a resizable dataset holding fewer rows than one
    // chunk) is stored whole: its size in the file is not chunk_rows() rows, so it is read
    // through a selection.
    d.direct_chunks = d.driver == IoDriver::Serial && whole_rows && chunk[0] <= d.n &&
                      H5Pget_nfilters(create.get()) == 0 && H5Tequal(stored.get(), memory) > 0;
  } else {
    d.chunk_rows = std::max<std::size_t>(1, kContiguousReadBytes / d.row_bytes());
  }
  d.chunk_rows = std::min(d.chunk_rows, std::max<std::size_t>(1, d.n));

  // A few chunks of cache: whole-chunk reads need none, and reads of scattered rows in
  // `global` mode then decompress a chunk once per read call rather than once per row.
  d.images.reset();
  const std::size_t chunk_bytes = d.chunk_rows * d.row_bytes();
  const std::size_t cache = std::clamp<std::size_t>(4 * chunk_bytes, 1 << 20, 64 << 20);
  h5_check(H5Pset_chunk_cache(access.get(), 12421, cache, 1.0), images_where,
           "cannot set its chunk cache");
  d.images = open_dataset(file, d.names.images, images_where, access.get());
  map_file(d);

  // The number of classes, when the file or the caller states it.
  if (d.classes <= 0) {
    d.classes = 0;
    if (H5Aexists(d.labels.get(), "classes") > 0) {
      detail::AttributeHandle attr(h5_check(H5Aopen(d.labels.get(), "classes", H5P_DEFAULT),
                                            labels_where, "cannot open attribute 'classes'"));
      // One value, read wide: H5Aread writes every element of the attribute, and converts
      // an out-of-range value to int by clamping it silently.
      detail::SpaceHandle shape(h5_check(H5Aget_space(attr.get()), labels_where,
                                         "cannot read the shape of attribute 'classes'"));
      const hssize_t values = H5Sget_simple_extent_npoints(shape.get());
      if (values != 1) {
        throw IoError(fmt::format("{}: attribute 'classes' holds {} values, must hold one",
                                  labels_where, values));
      }
      long long value = 0;
      h5_check(H5Aread(attr.get(), H5T_NATIVE_LLONG, &value), labels_where,
               "cannot read attribute 'classes'");
      if (value <= 0) {
        throw IoError(
            fmt::format("{}: attribute 'classes' is {}, must be positive", labels_where, value));
      }
      if (value > std::numeric_limits<int>::max()) {
        throw IoError(fmt::format("{}: attribute 'classes' is {}, too large", labels_where, value));
      }
      d.classes = static_cast<int>(value);
    }
    static_cast<void>(detail::hdf5_error_text());
  }
}

struct LabelScan {
  long long lowest = std::numeric_limits<long long>::max();
  long long highest = std::numeric_limits<long long>::min();
  std::string error;
};

// Reads labels [begin, end) in pieces; notes the range and the first label outside
// [0, classes) when classes is known (> 0).
LabelScan scan_labels(const H5Dataset::Impl& d, std::size_t begin, std::size_t end) {
  LabelScan scan;
  std::vector<std::int32_t> piece;
  const std::string where = d.where(d.names.labels);
  for (std::size_t first = begin; first < end; first += kLabelScanPiece) {
    const std::size_t count = std::min(kLabelScanPiece, end - first);
    piece.resize(count);
    {
      std::lock_guard lock(hdf5_mutex());
      detail::silence_hdf5();
      detail::SpaceHandle file_space(h5_check(H5Dget_space(d.labels.get()), where, "no space"));
      const hsize_t start = first;
      const hsize_t size = count;
      h5_check(
          H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &size, nullptr),
          where, "cannot select labels");
      detail::SpaceHandle memory(H5Screate_simple(1, &size, nullptr));
      h5_check(H5Dread(d.labels.get(), H5T_NATIVE_INT32, memory.get(), file_space.get(),
                       H5P_DEFAULT, piece.data()),
               where, fmt::format("cannot read labels {}..{}", first, first + count - 1));
    }
    for (std::size_t i = 0; i < count; ++i) {
      const long long v = piece[i];
      scan.lowest = std::min(scan.lowest, v);
      scan.highest = std::max(scan.highest, v);
      if (scan.error.empty() && d.classes > 0 && (v < 0 || v >= d.classes)) {
        scan.error = fmt::format("{}: label {} of row {} is outside [0, {})", where, v, first + i,
                                 d.classes);
      }
    }
  }
  return scan;
}

std::string cause_of(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return error->cause();
  return e.what();
}

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

// The labels of `ranges` (total rows in all) into `labels`. Caller holds hdf5_mutex().
void read_labels(const H5Dataset::Impl& d, std::span<const RowRange> ranges, std::size_t total,
                 std::span<std::int32_t> labels) {
  const std::string where = d.where(d.names.labels);
  detail::SpaceHandle space(h5_check(H5Dget_space(d.labels.get()), where, "no space"));
  std::vector<hsize_t> start(1, 0);
  std::vector<hsize_t> count(1);
  select_rows(space.get(), ranges, start, count, where);
  const hsize_t dims = total;
  detail::SpaceHandle memory(H5Screate_simple(1, &dims, nullptr));
  h5_check(H5Dread(d.labels.get(), H5T_NATIVE_INT32, memory.get(), space.get(), H5P_DEFAULT,
                   labels.data()),
           where, fmt::format("cannot read {} labels from row {}", total, ranges[0].begin));
}

// The offset of the chunk that starts at row `row` of the images dataset.
std::vector<hsize_t> chunk_offset(const H5Dataset::Impl& d, std::size_t row) {
  std::vector<hsize_t> offset(d.shape.size() + 1, 0);
  offset[0] = row;
  return offset;
}

// An unfiltered chunk must hold exactly one chunk of rows in the file: a corrupted index
// could claim more than a buffer holds, or point at bytes that are not this chunk's.
void require_whole_chunk(const std::string& where, std::size_t row, hsize_t stored,
                         std::size_t bytes) {
  if (stored != bytes) {
    throw IoError(fmt::format(
        "{}: the chunk of row {} holds {} bytes in the file, not {}: the file is corrupt", where,
        row, stored, bytes));
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

}  // namespace

H5Dataset::H5Dataset(const Communicator& comm, std::string path, DatasetOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = std::move(path);
  d.names = std::move(options.names);
  d.classes = options.classes;
  d.driver = options.driver;

  std::string error;
  if (d.driver == IoDriver::MpiIo) {
    // H5Fopen through MPI-IO is collective (MPI_File_open): a rank that failed a check
    // before it would leave the others waiting there, so those checks are agreed first.
    try {
      check_path(d);
    } catch (const std::exception& e) {
      error = cause_of(e);
    }
    agree(comm, error);
  }
  try {
    open_local(d, comm);
  } catch (const std::exception& e) {
    error = cause_of(e);
  }
  agree(comm, error);

  // The labels are checked in parallel: rank r scans the r-th of k contiguous slices. The
  // slices are in row order, so the lowest failing rank (the one agree() names) holds the
  // first bad row of the file.
  const auto k = static_cast<std::size_t>(comm.size());
  const auto r = static_cast<std::size_t>(comm.rank());
  LabelScan scan;
  try {
    scan = scan_labels(d, d.n * r / k, d.n * (r + 1) / k);
  } catch (const std::exception& e) {
    scan.error = cause_of(e);
  }
  agree(comm, scan.error);

  long long lowest = 0;
  long long highest = 0;
  RINGDP_MPI_CHECK(PMPI_Allreduce(&scan.lowest, &lowest, 1, MPI_LONG_LONG, MPI_MIN, comm.native()));
  RINGDP_MPI_CHECK(
      PMPI_Allreduce(&scan.highest, &highest, 1, MPI_LONG_LONG, MPI_MAX, comm.native()));
  if (d.classes == 0) {
    // No stated class count: the labels define it. Every rank decides alike from the
    // reduced values; agree() still makes the throw one collective Error.
    std::string derived_error;
    if (lowest < 0) {
      derived_error = fmt::format("{}: label {} is negative (labels must be in [0, classes))",
                                  d.where(d.names.labels), lowest);
    } else if (highest >= std::numeric_limits<int>::max()) {
      derived_error = fmt::format("{}: label {} is too large", d.where(d.names.labels), highest);
    }
    agree(comm, derived_error);
    d.classes = static_cast<int>(highest) + 1;
  }
}

H5Dataset::~H5Dataset() = default;
H5Dataset::H5Dataset(H5Dataset&&) noexcept = default;
H5Dataset& H5Dataset::operator=(H5Dataset&&) noexcept = default;

const std::string& H5Dataset::path() const noexcept { return impl_->path; }
const DatasetNames& H5Dataset::names() const noexcept { return impl_->names; }
IoDriver H5Dataset::driver() const noexcept { return impl_->driver; }
std::size_t H5Dataset::size() const noexcept { return impl_->n; }
const std::vector<std::size_t>& H5Dataset::feature_shape() const noexcept { return impl_->shape; }
std::size_t H5Dataset::features() const noexcept { return impl_->features; }
ElementType H5Dataset::element_type() const noexcept { return impl_->type; }
std::size_t H5Dataset::row_bytes() const noexcept { return impl_->row_bytes(); }
int H5Dataset::classes() const noexcept { return impl_->classes; }
std::size_t H5Dataset::chunk_rows() const noexcept { return impl_->chunk_rows; }
std::size_t H5Dataset::chunks() const noexcept { return impl_->chunk_count(); }

void H5Dataset::set_chunk_cache(std::size_t bytes) {
  std::lock_guard lock(hdf5_mutex());
  detail::silence_hdf5();
  Impl& d = *impl_;
  const std::string where = d.where(d.names.images);
  detail::PlistHandle access(H5Pcreate(H5P_DATASET_ACCESS));
  h5_check(H5Pset_chunk_cache(access.get(), bytes == 0 ? 0 : 12421, bytes, 1.0), where,
           "cannot set its chunk cache");
  detail::DatasetHandle reopened(h5_check(
      H5Dopen2(d.file.get(), d.names.images.c_str(), access.get()), where, "cannot be reopened"));
  d.images = std::move(reopened);
}

IoCounters H5Dataset::counters() const noexcept {
  return {impl_->rows.load(), impl_->bytes.load(), impl_->reads.load()};
}

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

  std::lock_guard lock(hdf5_mutex());
  detail::silence_hdf5();
  const std::string images_where = d.where(d.names.images);

  // Images: one direct read when the ranges are exactly one whole chunk, otherwise one
  // selection holding every range (HDF5 then visits each chunk once per call, whatever
  // the number of ranges in it).
  if (!read_whole_chunk(d, ranges, total, images)) {
    detail::SpaceHandle space(h5_check(H5Dget_space(d.images.get()), images_where, "no space"));
    std::vector<hsize_t> start(d.shape.size() + 1, 0);
    std::vector<hsize_t> count(d.shape.size() + 1);
    std::copy(d.shape.begin(), d.shape.end(), count.begin() + 1);
    select_rows(space.get(), ranges, start, count, images_where);
    const hsize_t dims[2] = {total, d.features};
    detail::SpaceHandle memory(H5Screate_simple(2, dims, nullptr));
    const hid_t memory_type = d.type == ElementType::UInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    h5_check(
        H5Dread(d.images.get(), memory_type, memory.get(), space.get(), H5P_DEFAULT, images.data()),
        images_where, fmt::format("cannot read {} rows from row {}", total, ranges[0].begin));
  }
  // Labels: always a selection (4 bytes a row; no direct read needed).
  read_labels(d, ranges, total, labels);

  impl_->count_read(total);
}

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
    std::lock_guard lock(hdf5_mutex());
    detail::silence_hdf5();
    const std::vector<hsize_t> offset = chunk_offset(d, begin);
    unsigned filters = 0;
    hsize_t stored = 0;
    h5_check(H5Dget_chunk_info_by_coord(d.images.get(), offset.data(), &filters, &address, &stored),
             where, fmt::format("cannot locate the chunk of row {}", begin));
    require_whole_chunk(where, begin, stored, bytes);
    if (filters != 0 || address == HADDR_UNDEF) {
      throw IoError(fmt::format(
          "{}: the chunk of row {} is marked filtered or has no address: the file is corrupt",
          where, begin));
    }
    const RowRange range{begin, d.chunk_rows};
    read_labels(d, std::span<const RowRange>(&range, 1), d.chunk_rows, labels);
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
