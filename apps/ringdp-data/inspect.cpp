#include "inspect.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "ringdp/error.hpp"
#include "ringdp/io/h5_handle.hpp"
#include "ringdp/io/h5_storage.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace {

using ringdp::io::h5_check;

// Every HDF5 call below is checked: a failure is an IoError naming the file and the object
// (see where()), and every identifier is held by a handle, so nothing leaks on the way out.
std::string where(const std::string& path, const std::string& object) {
  return fmt::format("'{}': dataset '{}'", path, object);
}

struct Found {
  std::vector<std::string> datasets;
  bool failed = false;  // out of memory while visiting
};

herr_t visit(hid_t /*object*/, const char* name, const H5O_info_t* info, void* data) {
  auto* found = static_cast<Found*>(data);
  // No exception may cross HDF5's C frames: a failure stops the walk, and is reported.
  try {
    if (info != nullptr && name != nullptr && info->type == H5O_TYPE_DATASET) {
      found->datasets.push_back(std::string("/") + name);
    }
    return 0;
  } catch (const std::exception&) {
    found->failed = true;
    return -1;
  }
}

std::vector<std::string> list_datasets(hid_t file, const std::string& path) {
  Found found;
  const herr_t status = H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit, &found, H5O_INFO_BASIC);
  if (found.failed) throw ringdp::IoError(fmt::format("'{}': out of memory listing objects", path));
  h5_check(status, fmt::format("'{}'", path), "cannot list its objects (corrupt?)");
  return found.datasets;
}

std::string type_name(hid_t dataset, const std::string& at, bool& integer) {
  ringdp::io::TypeHandle type(h5_check(H5Dget_type(dataset), at, "cannot read its type"));
  const H5T_class_t cls = h5_check(H5Tget_class(type.get()), at, "cannot read its type class");
  const std::size_t size = H5Tget_size(type.get());
  if (size == 0) ringdp::io::throw_hdf5_error(at, "cannot read its type size");
  integer = cls == H5T_INTEGER;
  switch (cls) {
    case H5T_INTEGER: {
      const H5T_sign_t sign = h5_check(H5Tget_sign(type.get()), at, "cannot read its sign");
      return fmt::format("{}int{}", sign == H5T_SGN_NONE ? "u" : "", size * 8);
    }
    case H5T_FLOAT:
      return fmt::format("float{}", size * 8);
    default:
      return fmt::format("class {} ({} bytes)", static_cast<int>(cls), size);
  }
}

std::vector<hsize_t> extent(hid_t dataset, const std::string& at) {
  ringdp::io::SpaceHandle space(h5_check(H5Dget_space(dataset), at, "cannot read its dataspace"));
  const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), at, "cannot read its rank");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), at,
           "cannot read its shape");
  return dims;
}

// "contiguous", or "chunks (128 x 16), gzip 1".
std::string layout_text(hid_t dataset, std::size_t rank, const std::string& at) {
  ringdp::io::PlistHandle dcpl(
      h5_check(H5Dget_create_plist(dataset), at, "cannot read its creation properties"));
  if (h5_check(H5Pget_layout(dcpl.get()), at, "cannot read its layout") != H5D_CHUNKED) {
    return "contiguous";
  }
  std::vector<hsize_t> chunk(rank);
  h5_check(H5Pget_chunk(dcpl.get(), static_cast<int>(rank), chunk.data()), at,
           "cannot read its chunk shape");
  std::string layout = fmt::format("chunks ({})", fmt::join(chunk, " x "));
  const int filters = h5_check(H5Pget_nfilters(dcpl.get()), at, "cannot read its filters");
  for (int f = 0; f < filters; ++f) {
    unsigned flags = 0;
    std::size_t nvalues = 4;
    unsigned values[4] = {};
    char name[64] = {};
    const H5Z_filter_t id = h5_check(H5Pget_filter2(dcpl.get(), static_cast<unsigned>(f), &flags,
                                                    &nvalues, values, sizeof(name), name, nullptr),
                                     at, fmt::format("cannot read filter {}", f));
    if (id == H5Z_FILTER_DEFLATE) {
      layout += fmt::format(", gzip {}", nvalues > 0 ? values[0] : 0);
    } else {
      layout += fmt::format(", filter {}", name);
    }
  }
  return layout;
}

// The labels' attribute "classes" (0 when absent or not positive).
int stated_classes(hid_t dataset, const std::string& at) {
  if (h5_check(H5Aexists(dataset, "classes"), at, "cannot look up attribute 'classes'") == 0) {
    return 0;
  }
  ringdp::io::AttributeHandle attr(
      h5_check(H5Aopen(dataset, "classes", H5P_DEFAULT), at, "cannot open attribute 'classes'"));
  // One value, read wide: H5Aread writes every element of the attribute, and converts an
  // out-of-range value to int by clamping it silently.
  ringdp::io::SpaceHandle shape(
      h5_check(H5Aget_space(attr.get()), at, "cannot read the shape of attribute 'classes'"));
  const hssize_t values = H5Sget_simple_extent_npoints(shape.get());
  if (values != 1) {
    throw ringdp::IoError(
        fmt::format("{}: attribute 'classes' holds {} values, must hold one", at, values));
  }
  long long stated = 0;
  h5_check(H5Aread(attr.get(), H5T_NATIVE_LLONG, &stated), at, "cannot read attribute 'classes'");
  if (stated > std::numeric_limits<int>::max()) {
    throw ringdp::IoError(fmt::format("{}: attribute 'classes' is {}, too large", at, stated));
  }
  return stated > 0 ? static_cast<int>(stated) : 0;
}

// How many times each label occurs, read in pieces so that a label set larger than memory
// can still be checked.
std::map<long long, std::size_t> histogram(hid_t dataset, std::size_t n, const std::string& at) {
  constexpr std::size_t kPiece = std::size_t{1} << 20;
  std::map<long long, std::size_t> counts;
  ringdp::io::SpaceHandle space(h5_check(H5Dget_space(dataset), at, "cannot read its dataspace"));
  std::vector<long long> piece;
  for (std::size_t first = 0; first < n; first += kPiece) {
    const hsize_t count = std::min(kPiece, n - first);
    const hsize_t start = first;
    piece.resize(count);
    h5_check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr), at,
             "cannot select labels");
    ringdp::io::SpaceHandle memory(
        h5_check(H5Screate_simple(1, &count, nullptr), at, "cannot make a dataspace"));
    h5_check(
        H5Dread(dataset, H5T_NATIVE_LLONG, memory.get(), space.get(), H5P_DEFAULT, piece.data()),
        at, fmt::format("cannot read labels {}..{}", first, first + count - 1));
    for (long long v : piece) ++counts[v];
  }
  return counts;
}

int check_labels(hid_t dataset, const std::string& at, std::size_t n, int classes,
                 std::ostream& out) {
  const int stated = classes > 0 ? classes : stated_classes(dataset, at);
  const std::map<long long, std::size_t> counts = histogram(dataset, n, at);
  // Without a stated count: the largest label + 1 (clamped: a corrupted label may be huge).
  const long long largest = counts.empty() ? -1 : counts.rbegin()->first;
  const int effective =
      stated > 0 ? stated
                 : static_cast<int>(
                       std::clamp<long long>(largest, -1, std::numeric_limits<int>::max() - 1) + 1);
  out << fmt::format(
      "    classes: {} ({})\n", effective,
      classes > 0 ? "from --classes" : (stated > 0 ? "attribute 'classes'" : "max label + 1"));
  out << "    histogram:";
  for (const auto& [label, count] : counts) out << fmt::format(" {}:{}", label, count);
  out << "\n";
  std::size_t bad = 0;
  for (const auto& [label, count] : counts) {
    if (label < 0 || label >= effective) bad += count;
  }
  if (bad > 0) {
    out << fmt::format("    ERROR: {} labels outside [0, {})\n", bad, effective);
    return 1;
  }
  out << fmt::format("    labels: ok, all in [0, {})\n", effective);
  return 0;
}

// One dataset's line (and, for a labels dataset, its check); returns its problems.
int inspect_dataset(hid_t file, const std::string& path, const std::string& name, int classes,
                    std::ostream& out) {
  const std::string at = where(path, name);
  ringdp::io::DatasetHandle dataset(
      h5_check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), at, "cannot be opened"));
  const std::vector<hsize_t> dims = extent(dataset.get(), at);
  bool integer = false;
  const std::string type = type_name(dataset.get(), at, integer);
  const std::string layout = layout_text(dataset.get(), dims.size(), at);
  out << fmt::format("  {}: ({}) {}, {}\n", name, fmt::join(dims, " x "), type, layout);
  const bool is_labels = name.size() >= 6 && name.compare(name.size() - 6, 6, "labels") == 0;
  if (!is_labels || !integer || dims.size() != 1) return 0;
  // Before reading by the extent: is it backed by the file (not a corrupted 2^40 rows)?
  ringdp::io::require_fully_stored(dataset.get(), at);
  return check_labels(dataset.get(), at, dims[0], classes, out);
}

}  // namespace

int inspect_file(const std::string& path, int classes, std::ostream& out) {
  std::lock_guard lock(ringdp::io::hdf5_mutex());
  ringdp::io::silence_hdf5();
  const ringdp::io::FileHandle file(
      h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), fmt::format("'{}'", path),
               "cannot be opened as HDF5 (missing, not an HDF5 file, or truncated)"));
  const std::vector<std::string> datasets = list_datasets(file.get(), path);
  out << fmt::format("{}: {} datasets\n", path, datasets.size());
  int problems = 0;
  for (const std::string& name : datasets) {
    problems += inspect_dataset(file.get(), path, name, classes, out);
  }
  return problems;
}
