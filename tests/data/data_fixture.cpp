#include "data_fixture.hpp"

#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::test {

TempDir::TempDir(const std::string& tag) {
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char name[4096] = {};
  if (rank == 0) {
    const std::string pattern = (std::filesystem::temp_directory_path() /
                                 ("ringdp-" + tag + "-np" + std::to_string(size) + "-XXXXXX"))
                                    .string();
    std::snprintf(name, sizeof(name), "%s", pattern.c_str());
    if (mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
  }
  MPI_Bcast(name, sizeof(name), MPI_CHAR, 0, MPI_COMM_WORLD);
  path_ = name;
}

TempDir::~TempDir() {
  MPI_Barrier(MPI_COMM_WORLD);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

std::uint8_t byte_value(std::size_t row, std::size_t j) {
  return static_cast<std::uint8_t>((row * 131 + j * 7 + row / 256) % 256);
}

float float_value(std::size_t row, std::size_t j) {
  return static_cast<float>(row) + static_cast<float>(j) / 1024.0f - 0.5f;
}

namespace {

void check(herr_t status, const char* what) {
  if (status < 0) throw std::runtime_error(std::string("test fixture: ") + what);
}

hid_t make_groups_and_create(hid_t file, const std::string& name, hid_t type, hid_t space,
                             hid_t dcpl) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  check(H5Pset_create_intermediate_group(lcpl, 1), "intermediate groups");
  const hid_t id = H5Dcreate2(file, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT);
  H5Pclose(lcpl);
  if (id < 0) throw std::runtime_error("test fixture: cannot create " + name);
  return id;
}

}  // namespace

void write_file(const std::string& path, const FileSpec& spec) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    // A loader's background thread may be reading: HDF5 is not thread-safe here.
    std::lock_guard lock(io::hdf5_mutex());
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) throw std::runtime_error("test fixture: cannot create " + path);
    std::vector<hsize_t> dims{spec.samples};
    std::size_t features = 1;
    for (std::size_t v : spec.feature_shape) {
      dims.push_back(v);
      features *= v;
    }
    std::vector<hsize_t> max_dims = dims;
    if (spec.resizable) max_dims[0] = H5S_UNLIMITED;
    const hid_t space =
        H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data());
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (spec.chunk_rows > 0 && spec.samples > 0) {
      std::vector<hsize_t> chunk = dims;
      // A fixed-size dataset's chunks cannot be longer than it; a resizable one's can.
      chunk[0] =
          spec.resizable ? spec.chunk_rows : std::min<hsize_t>(spec.chunk_rows, spec.samples);
      for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
      check(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), "chunk");
      if (spec.gzip > 0) check(H5Pset_deflate(dcpl, static_cast<unsigned>(spec.gzip)), "gzip");
    }
    const hid_t type =
        spec.int32_images ? H5T_STD_I32LE : (spec.float32 ? H5T_IEEE_F32LE : H5T_STD_U8LE);
    const hid_t images = make_groups_and_create(file, spec.images, type, space, dcpl);
    if (spec.samples > 0 && features > 0) {
      if (spec.int32_images) {
        std::vector<int> data(spec.samples * features, 3);
        check(H5Dwrite(images, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
              "write images");
      } else if (spec.float32) {
        std::vector<float> data(spec.samples * features);
        for (std::size_t i = 0; i < spec.samples; ++i)
          for (std::size_t j = 0; j < features; ++j) data[i * features + j] = float_value(i, j);
        check(H5Dwrite(images, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
              "write images");
      } else {
        std::vector<std::uint8_t> data(spec.samples * features);
        for (std::size_t i = 0; i < spec.samples; ++i)
          for (std::size_t j = 0; j < features; ++j) data[i * features + j] = byte_value(i, j);
        check(H5Dwrite(images, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
              "write images");
      }
    }
    H5Dclose(images);
    H5Pclose(dcpl);
    H5Sclose(space);

    const hsize_t n = spec.label_count >= 0 ? static_cast<hsize_t>(spec.label_count) : spec.samples;
    const hid_t label_space = H5Screate_simple(1, &n, nullptr);
    const hid_t labels = make_groups_and_create(file, spec.labels,
                                                spec.float_labels ? H5T_IEEE_F64LE : H5T_STD_I64LE,
                                                label_space, H5P_DEFAULT);
    std::vector<long long> values(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = spec.label(i);
    if (n > 0) {
      check(H5Dwrite(labels, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
            "write labels");
    }
    if (spec.classes_attribute > 0) {
      const hid_t scalar = H5Screate(H5S_SCALAR);
      const hid_t attr =
          H5Acreate2(labels, "classes", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
      check(H5Awrite(attr, H5T_NATIVE_INT, &spec.classes_attribute), "attribute");
      H5Aclose(attr);
      H5Sclose(scalar);
    }
    H5Dclose(labels);
    H5Sclose(label_space);
    H5Fclose(file);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

DirectRows read_direct(const std::string& path, const std::string& images,
                       const std::string& labels, const std::vector<std::uint64_t>& rows) {
  DirectRows out;
  std::lock_guard lock(io::hdf5_mutex());  // see write_file
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) throw std::runtime_error("read_direct: cannot open " + path);
  const hid_t dset = H5Dopen2(file, images.c_str(), H5P_DEFAULT);
  const hid_t lset = H5Dopen2(file, labels.c_str(), H5P_DEFAULT);
  const hid_t space = H5Dget_space(dset);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::size_t features = 1;
  for (int i = 1; i < rank; ++i) features *= dims[static_cast<std::size_t>(i)];
  const hid_t type = H5Dget_type(dset);
  const bool is_float = H5Tget_class(type) == H5T_FLOAT;
  H5Tclose(type);
  const hid_t lspace = H5Dget_space(lset);
  for (std::uint64_t row : rows) {
    // One row at a time on purpose: the simplest possible independent reference.
    std::vector<hsize_t> start(dims.size(), 0);
    std::vector<hsize_t> count = dims;
    start[0] = row;
    count[0] = 1;
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    const hsize_t mdims = features;
    const hid_t mspace = H5Screate_simple(1, &mdims, nullptr);
    if (is_float) {
      std::vector<float> v(features);
      H5Dread(dset, H5T_NATIVE_FLOAT, mspace, space, H5P_DEFAULT, v.data());
      out.values.insert(out.values.end(), v.begin(), v.end());
    } else {
      std::vector<std::uint8_t> v(features);
      H5Dread(dset, H5T_NATIVE_UINT8, mspace, space, H5P_DEFAULT, v.data());
      for (std::uint8_t b : v) out.values.push_back(static_cast<float>(b) / 255.0f);
    }
    H5Sclose(mspace);
    const hsize_t one = 1;
    const hsize_t lstart = row;
    H5Sselect_hyperslab(lspace, H5S_SELECT_SET, &lstart, nullptr, &one, nullptr);
    const hid_t lmem = H5Screate_simple(1, &one, nullptr);
    int label = -1;
    H5Dread(lset, H5T_NATIVE_INT, lmem, lspace, H5P_DEFAULT, &label);
    H5Sclose(lmem);
    out.labels.push_back(label);
  }
  H5Sclose(lspace);
  H5Sclose(space);
  H5Dclose(lset);
  H5Dclose(dset);
  H5Fclose(file);
  return out;
}

bool matches_direct(const data::Batch& b, const std::string& path, const FileSpec& spec) {
  const DirectRows direct = read_direct(path, spec.images, spec.labels, b.indices);
  if (static_cast<std::size_t>(b.x.size()) != direct.values.size()) return false;
  if (std::memcmp(b.x.data(), direct.values.data(), direct.values.size() * sizeof(float)) != 0)
    return false;
  for (std::size_t c = 0; c < b.labels.size(); ++c)
    if (b.labels[c] != direct.labels[c]) return false;
  return true;
}

std::vector<std::uint64_t> gather_all(const std::vector<std::uint64_t>& mine, MPI_Comm comm) {
  int size = 0;
  MPI_Comm_size(comm, &size);
  int count = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(size));
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  std::vector<int> displs(static_cast<std::size_t>(size), 0);
  for (std::size_t i = 1; i < counts.size(); ++i) displs[i] = displs[i - 1] + counts[i - 1];
  std::vector<std::uint64_t> all(static_cast<std::size_t>(displs.back() + counts.back()));
  MPI_Allgatherv(mine.data(), count, MPI_UINT64_T, all.data(), counts.data(), displs.data(),
                 MPI_UINT64_T, comm);
  return all;
}

}  // namespace ringdp::test

namespace ringdp::test {

std::vector<unsigned char> read_dataset_bytes(const std::string& path, const std::string& name) {
  std::lock_guard lock(io::hdf5_mutex());
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) throw std::runtime_error("read_dataset_bytes: cannot open " + path);
  const hid_t dset = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  const hid_t type = H5Dget_type(dset);
  const hid_t space = H5Dget_space(dset);
  const auto points = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
  std::vector<unsigned char> bytes(points * H5Tget_size(type));
  if (!bytes.empty()) H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(dset);
  H5Fclose(file);
  return bytes;
}

}  // namespace ringdp::test
