// HDF5 checkpoints.

#include "ringdp/train/checkpoint.hpp"

#include <fmt/format.h>
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <vector>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/data/hdf5_lock.hpp"

namespace ringdp::train {
namespace {

constexpr std::int64_t kFormat = 1;

// RAII for an hid_t with its close function; HDF5 ids are not reused while open.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  [[nodiscard]] hid_t get() const noexcept { return id_; }
  [[nodiscard]] bool ok() const noexcept { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void check(bool ok, const std::string& what) {
  if (!ok) throw IoError(what);
}

void write_array(hid_t where, const std::string& name, std::span<const float> data) {
  const hsize_t dims[1] = {data.size()};
  Id space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  check(space.ok(), "cannot create a dataspace");
  Id set(H5Dcreate2(where, name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT),
         H5Dclose);
  check(set.ok(), fmt::format("cannot create dataset '{}'", name));
  check(H5Dwrite(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) >= 0,
        fmt::format("cannot write dataset '{}'", name));
}

void read_array(hid_t where, const std::string& name, std::span<float> out) {
  check(H5Lexists(where, name.c_str(), H5P_DEFAULT) > 0,
        fmt::format("dataset '{}' is missing", name));
  Id set(H5Dopen2(where, name.c_str(), H5P_DEFAULT), H5Dclose);
  check(set.ok(), fmt::format("cannot open dataset '{}'", name));
  Id space(H5Dget_space(set.get()), H5Sclose);
  hsize_t dims[1] = {0};
  check(H5Sget_simple_extent_ndims(space.get()) == 1 &&
            H5Sget_simple_extent_dims(space.get(), dims, nullptr) == 1,
        fmt::format("dataset '{}' is not one-dimensional", name));
  check(dims[0] == out.size(),
        fmt::format("dataset '{}' holds {} values, the model needs {}", name, dims[0], out.size()));
  check(H5Dread(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0,
        fmt::format("cannot read dataset '{}'", name));
}

void write_int(hid_t where, const char* name, std::int64_t value) {
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(where, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  check(attr.ok() && H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) >= 0,
        fmt::format("cannot write attribute '{}'", name));
}

void write_string(hid_t where, const char* name, const std::string& value) {
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(where, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  check(attr.ok() && H5Awrite(attr.get(), type.get(), padded.data()) >= 0,
        fmt::format("cannot write attribute '{}'", name));
}

std::int64_t read_int(hid_t where, const char* name) {
  check(H5Aexists(where, name) > 0, fmt::format("attribute '{}' is missing", name));
  Id attr(H5Aopen(where, name, H5P_DEFAULT), H5Aclose);
  std::int64_t value = 0;
  check(attr.ok() && H5Aread(attr.get(), H5T_NATIVE_INT64, &value) >= 0,
        fmt::format("cannot read attribute '{}'", name));
  return value;
}

std::string read_string(hid_t where, const char* name) {
  check(H5Aexists(where, name) > 0, fmt::format("attribute '{}' is missing", name));
  Id attr(H5Aopen(where, name, H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(attr.get()), H5Tclose);
  check(attr.ok() && type.ok() && H5Tget_class(type.get()) == H5T_STRING &&
            H5Tis_variable_str(type.get()) == 0,
        fmt::format("attribute '{}' is not a fixed-length string", name));
  std::string value(H5Tget_size(type.get()), '\0');
  check(H5Aread(attr.get(), type.get(), value.data()) >= 0,
        fmt::format("cannot read attribute '{}'", name));
  value.resize(value.find('\0') == std::string::npos ? value.size() : value.find('\0'));
  return value;
}

}  // namespace

void save_checkpoint(const Communicator& comm, const std::string& path,
                     const nn::Sequential<float>& model, nn::Optimizer<float>& optimizer,
                     const CheckpointInfo& info) {
  std::string error;
  if (comm.rank() == 0) {
    const std::string temporary = path + ".tmp";
    try {
      std::lock_guard lock(data::hdf5_mutex());
      {
        Id file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
        check(file.ok(), fmt::format("cannot create '{}'", temporary));
        write_array(file.get(), "parameters", model.parameters());
        Id group(H5Gcreate2(file.get(), "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Gclose);
        check(group.ok(), "cannot create group 'optimizer'");
        for (const auto& state : optimizer.state())
          write_array(group.get(), state.name, state.data);
        write_int(file.get(), "format", kFormat);
        write_string(file.get(), "model_spec", info.model_spec);
        write_string(file.get(), "optimizer", optimizer.kind());
        write_int(file.get(), "ranks", info.ranks);
        write_int(file.get(), "epoch", info.position.epoch);
        write_int(file.get(), "step_in_epoch", info.position.step_in_epoch);
        write_int(file.get(), "global_step", info.position.global_step);
        write_int(file.get(), "optimizer_steps", optimizer.step_count());
        check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0,
              fmt::format("cannot flush '{}'", temporary));
      }
      std::error_code ec;
      std::filesystem::rename(temporary, path, ec);
      check(!ec, fmt::format("cannot rename '{}' to '{}': {}", temporary, path, ec.message()));
    } catch (const Error& e) {
      error = fmt::format("checkpoint '{}': {}", path, e.cause());
      std::remove(temporary.c_str());
    }
  }
  try {
    agree(comm, error);
  } catch (const Error& e) {
    throw IoError(e.rank(), e.cause(), true);
  }
}

CheckpointInfo load_checkpoint(const Communicator& comm, const std::string& path,
                               nn::Sequential<float>& model, nn::Optimizer<float>& optimizer,
                               std::string_view expected_spec) {
  // Read into copies first: the model and optimizer change only once every rank succeeded.
  std::vector<float> parameters(model.parameter_count());
  auto states = optimizer.state();
  std::vector<std::vector<float>> state_values(states.size());
  CheckpointInfo info;
  std::string error;
  try {
    std::lock_guard lock(data::hdf5_mutex());
    check(std::filesystem::exists(path), "no such file");
    // Probing a bad file is expected to fail: keep HDF5's error stack off stderr.
    htri_t is_hdf5 = -1;
    hid_t opened = -1;
    H5E_BEGIN_TRY {
      is_hdf5 = H5Fis_hdf5(path.c_str());
      if (is_hdf5 > 0) opened = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    H5E_END_TRY;
    check(is_hdf5 > 0, "not an HDF5 file (or truncated)");
    Id file(opened, H5Fclose);
    check(file.ok(), "cannot open it as HDF5");
    const std::int64_t format = read_int(file.get(), "format");
    check(format == kFormat, fmt::format("format {} is not the supported {}", format, kFormat));
    info.model_spec = read_string(file.get(), "model_spec");
    check(expected_spec.empty() || info.model_spec == expected_spec,
          fmt::format("it holds model '{}', the run uses '{}'", info.model_spec, expected_spec));
    info.optimizer = read_string(file.get(), "optimizer");
    check(info.optimizer == optimizer.kind(),
          fmt::format("it holds optimizer '{}' state, the run uses '{}'", info.optimizer,
                      optimizer.kind()));
    info.ranks = read_int(file.get(), "ranks");
    info.position.epoch = read_int(file.get(), "epoch");
    info.position.step_in_epoch = read_int(file.get(), "step_in_epoch");
    info.position.global_step = read_int(file.get(), "global_step");
    info.optimizer_steps = read_int(file.get(), "optimizer_steps");
    check(info.position.epoch >= 0 && info.position.step_in_epoch >= 0 &&
              info.position.global_step >= 0 && info.optimizer_steps >= 0,
          "negative position");
    read_array(file.get(), "parameters", parameters);
    for (std::size_t i = 0; i < states.size(); ++i) {
      state_values[i].resize(states[i].data.size());
      read_array(file.get(), "optimizer/" + states[i].name, state_values[i]);
    }
  } catch (const Error& e) {
    error = fmt::format("checkpoint '{}': {}", path, e.cause());
  }
  agree(comm, error);
  std::copy(parameters.begin(), parameters.end(), model.parameters().begin());
  for (std::size_t i = 0; i < states.size(); ++i) {
    std::copy(state_values[i].begin(), state_values[i].end(), states[i].data.begin());
  }
  optimizer.set_step_count(info.optimizer_steps);
  return info;
}

}  // namespace ringdp::train
