#include "train/checkpoint_file.hpp"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>

#include "ringdp/io/h5_handle.hpp"
#include "ringdp/error.hpp"

namespace ringdp::train::detail {
namespace {

using io::AttributeHandle;
using io::DatasetHandle;
using io::FileHandle;
using io::GroupHandle;
using io::PlistHandle;
using io::SpaceHandle;
using io::TypeHandle;

constexpr const char* kFormat = "ringdp-checkpoint";
constexpr std::int64_t kFormatVersion = 1;
// Arrays are written in chunks of 1 MiB: each chunk carries its own Fletcher-32
// checksum, so a flipped byte is reported on read, and the chunk is large enough that
// the per-chunk overhead is negligible.
constexpr std::size_t kChunkElements = std::size_t{1} << 18;

// --- writing --------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(std::string_view what) const {
    io::throw_hdf5_error(fmt::format("cannot write checkpoint '{}'", path_), what);
  }
  template <class T>
  T check(T status, std::string_view what) const {
    if (status < 0) fail(what);
    return status;
  }

  // Fixed-length, not variable-length: a variable-length string lives in HDF5's global
  // heap, which has no checksum, so a flipped byte there loaded silently as another (or an
  // empty) string; a fixed-length one is stored in the attribute message itself, inside the
  // checksummed object header.
  void string_attribute(hid_t object, const char* name, const std::string& value) const {
    TypeHandle type(check(H5Tcopy(H5T_C_S1), "string type"));
    check(H5Tset_size(type.get(), value.size() + 1), "string type");
    check(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), "string type");
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "string type");
    SpaceHandle space(check(H5Screate(H5S_SCALAR), "dataspace"));
    AttributeHandle attribute(
        check(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name));
    check(H5Awrite(attribute.get(), type.get(), value.c_str()), name);
  }

  void int_attribute(hid_t object, const char* name, std::int64_t value) const {
    SpaceHandle space(check(H5Screate(H5S_SCALAR), "dataspace"));
    AttributeHandle attribute(check(
        H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), name));
    check(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), name);
  }

  void array(hid_t location, const std::string& name, const std::vector<float>& values) const {
    const hsize_t n = values.size();
    SpaceHandle space(check(H5Screate_simple(1, &n, nullptr), "dataspace"));
    PlistHandle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "property list"));
    if (n > 0) {  // a chunked dataset needs at least one element per chunk
      const hsize_t chunk = std::min<hsize_t>(n, kChunkElements);
      check(H5Pset_chunk(dcpl.get(), 1, &chunk), name);
      check(H5Pset_fletcher32(dcpl.get()), name);
    }
    DatasetHandle dataset(check(H5Dcreate2(location, name.c_str(), H5T_IEEE_F32LE, space.get(),
                                           H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                name));
    if (n > 0) {
      check(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
            name);
    }
  }

  GroupHandle group(hid_t file, const char* name) const {
    return GroupHandle(check(H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name));
  }

 private:
  std::string path_;
};

void check_name(const std::string& path, const std::string& name, std::string_view what) {
  if (name.empty() || name.find_first_of("/,") != std::string::npos || name == "." ||
      name == "..") {
    throw InvalidArgument(
        fmt::format("cannot write checkpoint '{}': bad {} name '{}'", path, what, name));
  }
}

// --- reading --------------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void corrupt(std::string_view what) const {
    const std::string detail = io::hdf5_error_text();
    if (detail.empty()) {
      throw IoError(fmt::format("checkpoint '{}' is not valid: {}", path_, what));
    }
    throw IoError(
        fmt::format("checkpoint '{}' is corrupt or truncated: {} ({})", path_, what, detail));
  }
  template <class T>
  T check(T status, std::string_view what) const {
    if (status < 0) corrupt(what);
    return status;
  }

  AttributeHandle open_attribute(hid_t object, const char* name) const {
    const htri_t exists = H5Aexists(object, name);
    if (exists <= 0) {
      if (exists < 0) corrupt(fmt::format("cannot look up attribute '{}'", name));
      corrupt(fmt::format("attribute '{}' is missing", name));
    }
    AttributeHandle attribute(check(H5Aopen(object, name, H5P_DEFAULT), name));
    SpaceHandle space(check(H5Aget_space(attribute.get()), name));
    if (H5Sget_simple_extent_type(space.get()) != H5S_SCALAR) {
      corrupt(fmt::format("attribute '{}' is not a scalar", name));
    }
    return attribute;
  }

  std::string string_attribute(hid_t object, const char* name) const {
    AttributeHandle attribute = open_attribute(object, name);
    return read_string(attribute.get(), name);
  }

  std::string read_string(hid_t attribute, const char* name) const {
    TypeHandle type(check(H5Aget_type(attribute), name));
    if (H5Tget_class(type.get()) != H5T_STRING) {
      corrupt(fmt::format("attribute '{}' is not a string", name));
    }
    if (check(H5Tis_variable_str(type.get()), name) > 0) {
      TypeHandle memory(check(H5Tcopy(H5T_C_S1), name));
      check(H5Tset_size(memory.get(), H5T_VARIABLE), name);
      check(H5Tset_cset(memory.get(), H5Tget_cset(type.get())), name);
      char* text = nullptr;
      check(H5Aread(attribute, memory.get(), &text), name);
      std::string value = text != nullptr ? std::string(text) : std::string();
      if (text != nullptr) H5free_memory(text);
      return value;
    }
    const std::size_t size = H5Tget_size(type.get());
    if (size == 0 || size > (std::size_t{1} << 20)) {
      corrupt(fmt::format("attribute '{}' has an absurd string size {}", name, size));
    }
    TypeHandle memory(check(H5Tcopy(H5T_C_S1), name));
    check(H5Tset_size(memory.get(), size), name);
    check(H5Tset_cset(memory.get(), H5Tget_cset(type.get())), name);  // HDF5 converts no cset
    std::string value(size, '\0');
    check(H5Aread(attribute, memory.get(), value.data()), name);
    value.resize(std::strlen(value.c_str()));
    return value;
  }

  std::int64_t int_attribute(hid_t object, const char* name) const {
    AttributeHandle attribute = open_attribute(object, name);
    TypeHandle type(check(H5Aget_type(attribute.get()), name));
    if (H5Tget_class(type.get()) != H5T_INTEGER) {
      corrupt(fmt::format("attribute '{}' is not an integer", name));
    }
    std::int64_t value = 0;
    check(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), name);
    return value;
  }

  GroupHandle group(hid_t file, const char* name) const {
    const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
    if (exists <= 0) corrupt(fmt::format("group '{}' is missing", name));
    GroupHandle group(check(H5Gopen2(file, name, H5P_DEFAULT), name));
    return group;
  }

  // Reads a 1-D float array of exactly `expected` elements (or any length when expected
  // is SIZE_MAX). The stored size must cover the data: a header claiming 2^40 elements
  // over a few kB of file is rejected before anything is allocated.
  std::vector<float> array(hid_t location, const std::string& name, std::size_t expected) const {
    const std::string where = fmt::format("dataset '{}'", name);
    const htri_t exists = H5Lexists(location, name.c_str(), H5P_DEFAULT);
    if (exists <= 0) corrupt(fmt::format("{} is missing", where));
    DatasetHandle dataset(check(H5Dopen2(location, name.c_str(), H5P_DEFAULT), where));
    TypeHandle type(check(H5Dget_type(dataset.get()), where));
    if (H5Tget_class(type.get()) != H5T_FLOAT)
      corrupt(fmt::format("{} is not floating-point", where));
    SpaceHandle space(check(H5Dget_space(dataset.get()), where));
    if (H5Sget_simple_extent_ndims(space.get()) != 1) corrupt(fmt::format("{} is not 1-D", where));
    hsize_t n = 0;
    check(H5Sget_simple_extent_dims(space.get(), &n, nullptr), where);
    if (expected != std::numeric_limits<std::size_t>::max() && n != expected) {
      corrupt(fmt::format("{} has {} elements, expected {}", where, n, expected));
    }
    const std::uintmax_t file_bytes = file_size();
    const hsize_t type_bytes = H5Tget_size(type.get());
    if (n > file_bytes || (n > 0 && H5Dget_storage_size(dataset.get()) < n * type_bytes)) {
      corrupt(fmt::format("{} claims {} elements but the file does not hold them", where, n));
    }
    std::vector<float> values(n);
    if (n > 0) {
      check(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
            fmt::format("cannot read {}", where));
    }
    return values;
  }

  [[nodiscard]] std::uintmax_t file_size() const {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path_, ec);
    return ec ? 0 : size;
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

struct MetadataVisit {
  const Reader* reader;
  std::vector<std::pair<std::string, std::string>>* out;
  std::string error;  // an exception must not unwind through HDF5's C frames
};

herr_t collect_metadata(hid_t location, const char* name, const H5A_info_t* /*info*/, void* data) {
  auto* visit = static_cast<MetadataVisit*>(data);
  try {
    AttributeHandle attribute(H5Aopen(location, name, H5P_DEFAULT));
    if (!attribute.valid()) return -1;
    visit->out->emplace_back(name, visit->reader->read_string(attribute.get(), name));
    return 0;
  } catch (const std::exception& e) {
    visit->error = e.what();
    return -1;
  }
}

std::vector<std::string> split_names(const std::string& joined) {
  std::vector<std::string> names;
  if (joined.empty()) return names;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = joined.find(',', begin);
    names.push_back(joined.substr(begin, comma - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return names;
}

std::string join_names(const std::vector<NamedArray>& arrays) {
  std::string joined;
  for (const NamedArray& a : arrays) {
    if (!joined.empty()) joined += ',';
    joined += a.name;
  }
  return joined;
}

}  // namespace

void write_checkpoint_file(const std::string& path, const Checkpoint& c) {
  for (const NamedArray& a : c.optimizer_state) {
    check_name(path, a.name, "optimizer state");
    if (a.values.size() != c.parameters.size()) {
      throw InvalidArgument(fmt::format(
          "cannot write checkpoint '{}': optimizer state '{}' has {} elements, the arena {}", path,
          a.name, a.values.size(), c.parameters.size()));
    }
  }
  for (const auto& [name, value] : c.metadata) check_name(path, name, "metadata");

  io::silence_hdf5();
  Writer w(path);
  // The latest file format checksums its metadata (object headers, B-trees), so damage
  // to the structure is reported on open instead of read as garbage.
  PlistHandle fapl(w.check(H5Pcreate(H5P_FILE_ACCESS), "property list"));
  w.check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "format");
  FileHandle file(w.check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                          "cannot create the file"));
  const hid_t root = file.get();
  w.string_attribute(root, "format", kFormat);
  w.int_attribute(root, "format_version", kFormatVersion);
  w.string_attribute(root, "model_spec", c.model_spec);
  w.int_attribute(root, "ranks", c.ranks);
  w.int_attribute(root, "epoch", c.epoch);
  w.int_attribute(root, "step", c.step);
  w.int_attribute(root, "step_in_epoch", c.step_in_epoch);
  w.array(root, "parameters", c.parameters);
  {
    GroupHandle g = w.group(root, "optimizer");
    w.string_attribute(g.get(), "kind", c.optimizer);
    w.int_attribute(g.get(), "steps", c.optimizer_steps);
    w.string_attribute(g.get(), "state_names", join_names(c.optimizer_state));
    for (const NamedArray& a : c.optimizer_state) w.array(g.get(), a.name, a.values);
  }
  {
    GroupHandle g = w.group(root, "sampler");
    w.string_attribute(g.get(), "mode", c.sampling);
    w.int_attribute(g.get(), "batch_size", c.batch_size);
    w.int_attribute(g.get(), "seed", static_cast<std::int64_t>(c.seed));
    w.int_attribute(g.get(), "virtual_ranks", c.virtual_ranks);
    w.int_attribute(g.get(), "epoch", c.epoch);
    w.int_attribute(g.get(), "step_in_epoch", c.step_in_epoch);
  }
  {
    GroupHandle g = w.group(root, "rng");
    w.int_attribute(g.get(), "seed", static_cast<std::int64_t>(c.seed));
    w.int_attribute(g.get(), "epoch", c.epoch);
    w.int_attribute(g.get(), "step_in_epoch", c.step_in_epoch);
    w.string_attribute(g.get(), "note",
                       "every random stream of a run is a pure function of (seed, epoch)");
  }
  {
    GroupHandle g = w.group(root, "metadata");
    for (const auto& [name, value] : c.metadata) w.string_attribute(g.get(), name.c_str(), value);
  }
  // Close explicitly: H5Fclose flushes, and its failure (a full disk) must be an error,
  // not the silent result of a destructor.
  w.check(H5Fclose(file.release()), "cannot close the file");
}

Checkpoint read_checkpoint_file(const std::string& path) {
  io::silence_hdf5();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw IoError(fmt::format("checkpoint '{}' does not exist", path));
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw IoError(fmt::format("checkpoint '{}' is not a regular file", path));
  }
  Reader r(path);
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) {
    throw IoError(fmt::format("checkpoint '{}' is not an HDF5 file (or is truncated)", path));
  }
  FileHandle file(
      r.check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "cannot open the file"));
  const hid_t root = file.get();

  Checkpoint c;
  if (H5Aexists(root, "format") <= 0 || r.string_attribute(root, "format") != kFormat) {
    throw IoError(fmt::format("'{}' is an HDF5 file but not a ringdp checkpoint", path));
  }
  const std::int64_t version = r.int_attribute(root, "format_version");
  if (version != kFormatVersion) {
    throw IoError(fmt::format("checkpoint '{}' has format version {}, this ringdp reads {}", path,
                              version, kFormatVersion));
  }
  c.model_spec = r.string_attribute(root, "model_spec");
  const std::int64_t ranks = r.int_attribute(root, "ranks");
  if (ranks < 1 || ranks > std::numeric_limits<int>::max()) r.corrupt("bad rank count");
  c.ranks = static_cast<int>(ranks);
  c.epoch = r.int_attribute(root, "epoch");
  c.step = r.int_attribute(root, "step");
  c.step_in_epoch = r.int_attribute(root, "step_in_epoch");
  if (c.epoch < 0 || c.step < 0 || c.step_in_epoch < 0) r.corrupt("negative epoch or step");
  c.parameters = r.array(root, "parameters", std::numeric_limits<std::size_t>::max());
  if (c.parameters.empty()) r.corrupt("the parameter arena is empty");
  {
    GroupHandle g = r.group(root, "optimizer");
    c.optimizer = r.string_attribute(g.get(), "kind");
    c.optimizer_steps = r.int_attribute(g.get(), "steps");
    if (c.optimizer_steps < 0) r.corrupt("negative optimizer step count");
    for (const std::string& name : split_names(r.string_attribute(g.get(), "state_names"))) {
      c.optimizer_state.push_back({name, r.array(g.get(), name, c.parameters.size())});
    }
  }
  {
    GroupHandle g = r.group(root, "sampler");
    c.sampling = r.string_attribute(g.get(), "mode");
    c.batch_size = r.int_attribute(g.get(), "batch_size");
    c.seed = static_cast<std::uint64_t>(r.int_attribute(g.get(), "seed"));
    c.virtual_ranks = r.int_attribute(g.get(), "virtual_ranks");
  }
  {
    GroupHandle g = r.group(root, "metadata");
    MetadataVisit visit{&r, &c.metadata, {}};
    hsize_t index = 0;
    const herr_t status =
        H5Aiterate2(g.get(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_metadata, &visit);
    if (!visit.error.empty()) throw IoError(visit.error);
    r.check(status, "cannot read /metadata");
  }
  r.check(H5Fclose(file.release()), "cannot close the file");
  return c;
}

}  // namespace ringdp::train::detail
