#include "inspect.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hdf5.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "ringdp/error.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace {

struct Found {
  std::vector<std::string> datasets;
};

herr_t visit(hid_t /*object*/, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET)
    static_cast<Found*>(data)->datasets.push_back(std::string("/") + name);
  return 0;
}

std::string type_name(hid_t type) {
  const std::size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", size * 8);
    case H5T_FLOAT:
      return fmt::format("float{}", size * 8);
    default:
      return fmt::format("class {} ({} bytes)", static_cast<int>(H5Tget_class(type)), size);
  }
}

int check_labels(hid_t dset, const std::string& name, std::size_t n, int classes,
                 std::ostream& out) {
  // Read in pieces so that a label set larger than memory can still be checked.
  constexpr std::size_t kPiece = std::size_t{1} << 20;
  int stated = classes;
  if (stated <= 0 && H5Aexists(dset, "classes") > 0) {
    const hid_t attr = H5Aopen(dset, "classes", H5P_DEFAULT);
    H5Aread(attr, H5T_NATIVE_INT, &stated);
    H5Aclose(attr);
  }
  std::map<long long, std::size_t> histogram;
  const hid_t space = H5Dget_space(dset);
  std::vector<long long> piece;
  for (std::size_t first = 0; first < n; first += kPiece) {
    const hsize_t count = std::min(kPiece, n - first);
    const hsize_t start = first;
    piece.resize(count);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    const hid_t memory = H5Screate_simple(1, &count, nullptr);
    const herr_t status = H5Dread(dset, H5T_NATIVE_LLONG, memory, space, H5P_DEFAULT, piece.data());
    H5Sclose(memory);
    if (status < 0) {
      H5Sclose(space);
      throw ringdp::IoError(fmt::format("dataset '{}': cannot read labels", name));
    }
    for (long long v : piece) ++histogram[v];
  }
  H5Sclose(space);
  const int effective =
      stated > 0 ? stated
                 : (histogram.empty() ? 0 : static_cast<int>(histogram.rbegin()->first + 1));
  out << fmt::format(
      "    classes: {} ({})\n", effective,
      classes > 0 ? "from --classes" : (stated > 0 ? "attribute 'classes'" : "max label + 1"));
  out << "    histogram:";
  for (const auto& [label, count] : histogram) out << fmt::format(" {}:{}", label, count);
  out << "\n";
  std::size_t bad = 0;
  for (const auto& [label, count] : histogram) {
    if (label < 0 || label >= effective) bad += count;
  }
  if (bad > 0) {
    out << fmt::format("    ERROR: {} labels outside [0, {})\n", bad, effective);
    return 1;
  }
  out << fmt::format("    labels: ok, all in [0, {})\n", effective);
  return 0;
}

}  // namespace

int inspect_file(const std::string& path, int classes, std::ostream& out) {
  std::lock_guard lock(ringdp::io::hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) throw ringdp::IoError(fmt::format("'{}': cannot be opened as HDF5", path));
  Found found;
  H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit, &found, H5O_INFO_BASIC);
  out << fmt::format("{}: {} datasets\n", path, found.datasets.size());
  int problems = 0;
  for (const std::string& name : found.datasets) {
    const hid_t dset = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
    const hid_t space = H5Dget_space(dset);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    H5Sclose(space);
    const hid_t type = H5Dget_type(dset);
    const std::string tname = type_name(type);
    const bool integer = H5Tget_class(type) == H5T_INTEGER;
    H5Tclose(type);
    const hid_t dcpl = H5Dget_create_plist(dset);
    std::string layout = "contiguous";
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      std::vector<hsize_t> chunk(dims.size());
      H5Pget_chunk(dcpl, rank, chunk.data());
      layout = fmt::format("chunks ({})", fmt::join(chunk, " x "));
      const int filters = H5Pget_nfilters(dcpl);
      for (int f = 0; f < filters; ++f) {
        unsigned flags = 0;
        std::size_t nvalues = 4;
        unsigned values[4] = {};
        char fname[64] = {};
        const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(f), &flags, &nvalues,
                                               values, sizeof(fname), fname, nullptr);
        if (id == H5Z_FILTER_DEFLATE) {
          layout += fmt::format(", gzip {}", nvalues > 0 ? values[0] : 0);
        } else {
          layout += fmt::format(", filter {}", fname);
        }
      }
    }
    H5Pclose(dcpl);
    out << fmt::format("  {}: ({}) {}, {}\n", name, fmt::join(dims, " x "), tname, layout);
    const bool is_labels = name.size() >= 6 && name.compare(name.size() - 6, 6, "labels") == 0;
    if (is_labels && integer && rank == 1)
      problems += check_labels(dset, name, dims[0], classes, out);
    H5Dclose(dset);
  }
  H5Fclose(file);
  return problems;
}
