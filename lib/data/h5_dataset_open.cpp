// H5Dataset, opening: the file and its two datasets checked on this rank (shape, type,
// lengths, storage, chunking, the class count), and the label scan.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mpi.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>

#include "data/h5_dataset_impl.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/h5_storage.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::data::detail {
namespace {

using io::h5_check;

constexpr std::size_t kContiguousReadBytes = std::size_t{1} << 20;
constexpr std::size_t kLabelScanPiece = std::size_t{1} << 20;
// A corrupted header may claim any extent: the products of extents must not wrap around,
// or every later size (buffers, byte counts) would be computed from a wrong, small number.
constexpr std::size_t kMaxBytes = std::numeric_limits<std::size_t>::max() / 8;

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
  io::SpaceHandle space(h5_check(H5Dget_space(dataset), where, "cannot read its dataspace"));
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
io::DatasetHandle open_dataset(hid_t file, const std::string& name, const std::string& where,
                               hid_t access) {
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = name.find('/', pos + 1);
    const std::string prefix = name.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    const htri_t exists = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    if (exists <= 0) {
      static_cast<void>(io::hdf5_error_text());  // clear the stack
      throw IoError(fmt::format("{}: not found (no object '{}' in the file)", where, prefix));
    }
  }
  const hid_t id = H5Dopen2(file, name.c_str(), access);
  if (id < 0) io::throw_hdf5_error(where, "exists but cannot be opened as a dataset");
  return io::DatasetHandle(id);
}

// The file itself, through MPI-IO (collective over `comm`) or the default driver.
void open_file(H5Dataset::Impl& d, const Communicator& comm) {
  io::PlistHandle file_access(H5Pcreate(H5P_FILE_ACCESS));
  if (d.driver == IoDriver::MpiIo) {
    h5_check(H5Pset_fapl_mpio(file_access.get(), comm.native(), MPI_INFO_NULL),
             fmt::format("'{}'", d.path), "cannot use MPI-IO (HDF5 without parallel support?)");
  }
  const hid_t file = H5Fopen(d.path.c_str(), H5F_ACC_RDONLY, file_access.get());
  if (file < 0) {
    io::throw_hdf5_error(fmt::format("'{}'", d.path),
                         "cannot be opened as HDF5 (not an HDF5 file, or truncated)");
  }
  d.file = io::FileHandle(file);
}

// uint8 or float32, the element types the loader converts.
ElementType element_type(hid_t dataset, const std::string& where) {
  io::TypeHandle type(h5_check(H5Dget_type(dataset), where, "no type"));
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_INTEGER && size == 1 && H5Tget_sign(type.get()) == H5T_SGN_NONE) {
    return ElementType::UInt8;
  }
  if (cls == H5T_FLOAT && size == 4) return ElementType::Float32;
  throw IoError(fmt::format("{}: element type {} is not supported (uint8 or float32)", where,
                            describe_type(type.get())));
}

// Images: N x features..., uint8 or float32. Returns the dataset's extent.
std::vector<std::size_t> open_images(H5Dataset::Impl& d, hid_t access) {
  const std::string where = d.where(d.names.images);
  d.images = open_dataset(d.file.get(), d.names.images, where, access);
  const std::vector<std::size_t> dims = extent(d.images.get(), where);
  if (dims.size() < 2) {
    throw IoError(fmt::format("{}: must have rank >= 2 (samples x features), found rank {} {}",
                              where, dims.size(), shape_text(dims)));
  }
  d.n = dims[0];
  d.shape.assign(dims.begin() + 1, dims.end());
  d.features = 1;
  for (std::size_t v : d.shape) {
    if (v != 0 && d.features > kMaxBytes / v) {
      throw IoError(fmt::format("{}: shape {} is too large (the values per sample overflow)", where,
                                shape_text(dims)));
    }
    d.features *= v;
  }
  if (d.features == 0) {
    throw IoError(fmt::format("{}: empty feature shape {}", where, shape_text(dims)));
  }
  d.type = element_type(d.images.get(), where);
  if (d.n > kMaxBytes / d.row_bytes()) {
    throw IoError(fmt::format("{}: shape {} is too large (its size in bytes overflows)", where,
                              shape_text(dims)));
  }
  return dims;
}

// Labels: N integers, and at least one sample per rank.
void open_labels(H5Dataset::Impl& d, int ranks) {
  const std::string where = d.where(d.names.labels);
  d.labels = open_dataset(d.file.get(), d.names.labels, where, H5P_DEFAULT);
  const std::vector<std::size_t> label_dims = extent(d.labels.get(), where);
  if (label_dims.size() != 1) {
    throw IoError(fmt::format("{}: must have rank 1 (one label per sample), found rank {} {}",
                              where, label_dims.size(), shape_text(label_dims)));
  }
  {
    io::TypeHandle type(h5_check(H5Dget_type(d.labels.get()), where, "no type"));
    if (H5Tget_class(type.get()) != H5T_INTEGER) {
      throw IoError(
          fmt::format("{}: labels must be integers, found {}", where, describe_type(type.get())));
    }
  }
  if (label_dims[0] != d.n) {
    throw IoError(fmt::format("'{}': dataset '{}' has {} labels but dataset '{}' has {} samples",
                              d.path, d.names.labels, label_dims[0], d.names.images, d.n));
  }
  if (d.n < static_cast<std::size_t>(ranks)) {
    throw IoError(fmt::format("{}: {} samples, fewer than the {} ranks", d.where(d.names.images),
                              d.n, ranks));
  }
}

// Chunking: the unit the loader reads by, and whether whole chunks may be read directly.
void read_chunking(H5Dataset::Impl& d, const std::vector<std::size_t>& dims) {
  const std::string where = d.where(d.names.images);
  io::PlistHandle create(
      h5_check(H5Dget_create_plist(d.images.get()), where, "cannot read its creation properties"));
  if (H5Pget_layout(create.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    h5_check(H5Pget_chunk(create.get(), static_cast<int>(chunk.size()), chunk.data()), where,
             "cannot read its chunk shape");
    d.chunk_rows = std::max<std::size_t>(1, chunk[0]);
    const bool whole_rows = std::equal(chunk.begin() + 1, chunk.end(), dims.begin() + 1);
    io::TypeHandle stored(h5_check(H5Dget_type(d.images.get()), where, "no type"));
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
}

// A few chunks of cache: whole-chunk reads need none, and reads of scattered rows in
// `global` mode then decompress a chunk once per read call rather than once per row.
void reopen_images_with_cache(H5Dataset::Impl& d, hid_t access) {
  const std::string where = d.where(d.names.images);
  d.images.reset();
  const std::size_t chunk_bytes = d.chunk_rows * d.row_bytes();
  const std::size_t cache = std::clamp<std::size_t>(4 * chunk_bytes, 1 << 20, 64 << 20);
  h5_check(H5Pset_chunk_cache(access, 12421, cache, 1.0), where, "cannot set its chunk cache");
  d.images = open_dataset(d.file.get(), d.names.images, where, access);
}

// The number of classes, when the file states it (the labels' attribute "classes").
void read_classes_attribute(H5Dataset::Impl& d) {
  const std::string where = d.where(d.names.labels);
  d.classes = 0;
  if (H5Aexists(d.labels.get(), "classes") > 0) {
    io::AttributeHandle attr(h5_check(H5Aopen(d.labels.get(), "classes", H5P_DEFAULT), where,
                                      "cannot open attribute 'classes'"));
    // One value, read wide: H5Aread writes every element of the attribute, and converts
    // an out-of-range value to int by clamping it silently.
    io::SpaceHandle shape(
        h5_check(H5Aget_space(attr.get()), where, "cannot read the shape of attribute 'classes'"));
    const hssize_t values = H5Sget_simple_extent_npoints(shape.get());
    if (values != 1) {
      throw IoError(
          fmt::format("{}: attribute 'classes' holds {} values, must hold one", where, values));
    }
    long long value = 0;
    h5_check(H5Aread(attr.get(), H5T_NATIVE_LLONG, &value), where,
             "cannot read attribute 'classes'");
    if (value <= 0) {
      throw IoError(fmt::format("{}: attribute 'classes' is {}, must be positive", where, value));
    }
    if (value > std::numeric_limits<int>::max()) {
      throw IoError(fmt::format("{}: attribute 'classes' is {}, too large", where, value));
    }
    d.classes = static_cast<int>(value);
  }
  static_cast<void>(io::hdf5_error_text());
}

}  // namespace

void check_path(const H5Dataset::Impl& d) {
  std::error_code ec;
  if (!std::filesystem::exists(d.path, ec)) {
    throw IoError(fmt::format("'{}': no such file", d.path));
  }
  if (std::filesystem::is_directory(d.path, ec)) {
    throw IoError(fmt::format("'{}': is a directory, not an HDF5 file", d.path));
  }
}

void open_local(H5Dataset::Impl& d, const Communicator& comm) {
  std::lock_guard lock(io::hdf5_mutex());
  io::silence_hdf5();
  check_path(d);
  open_file(d, comm);
  io::PlistHandle access(H5Pcreate(H5P_DATASET_ACCESS));
  const std::vector<std::size_t> dims = open_images(d, access.get());
  open_labels(d, comm.size());
  // Before anything reads or allocates by the extents: are they backed by the file?
  io::require_fully_stored(d.images.get(), d.where(d.names.images));
  io::require_fully_stored(d.labels.get(), d.where(d.names.labels));
  read_chunking(d, dims);
  reopen_images_with_cache(d, access.get());
  map_file(d);
  if (d.classes <= 0) read_classes_attribute(d);
}

LabelRange scan_labels(const H5Dataset::Impl& d, std::size_t begin, std::size_t end) {
  LabelRange range;
  std::vector<std::int32_t> piece;
  const std::string where = d.where(d.names.labels);
  for (std::size_t first = begin; first < end; first += kLabelScanPiece) {
    const std::size_t count = std::min(kLabelScanPiece, end - first);
    piece.resize(count);
    {
      std::lock_guard lock(io::hdf5_mutex());
      io::silence_hdf5();
      io::SpaceHandle file_space(h5_check(H5Dget_space(d.labels.get()), where, "no space"));
      const hsize_t start = first;
      const hsize_t size = count;
      h5_check(
          H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &size, nullptr),
          where, "cannot select labels");
      io::SpaceHandle memory(H5Screate_simple(1, &size, nullptr));
      h5_check(H5Dread(d.labels.get(), H5T_NATIVE_INT32, memory.get(), file_space.get(),
                       H5P_DEFAULT, piece.data()),
               where, fmt::format("cannot read labels {}..{}", first, first + count - 1));
    }
    for (std::size_t i = 0; i < count; ++i) {
      const long long v = piece[i];
      if (d.classes > 0 && (v < 0 || v >= d.classes)) {
        throw IoError(fmt::format("{}: label {} of row {} is outside [0, {})", where, v, first + i,
                                  d.classes));
      }
      range.lowest = std::min(range.lowest, v);
      range.highest = std::max(range.highest, v);
    }
  }
  return range;
}

}  // namespace ringdp::data::detail
