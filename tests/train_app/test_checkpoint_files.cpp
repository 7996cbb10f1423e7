// Checkpoints and the metrics CSV on real files: round trip through HDF5 (and an
// independent read with the HDF5 C API), pruning to the last K, and every way a file can
// be bad giving the same Error on every rank. Run at 1, 2 and 3 ranks.
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/train/checkpoint.hpp"
#include "ringdp/train/metrics_csv.hpp"

namespace fs = std::filesystem;
using ringdp::test::all_ranks;
using ringdp::train::Checkpoint;
using ringdp::train::CheckpointExpectation;

namespace {

// A directory shared by the ranks: rank 0 creates it and broadcasts the name.
class SharedDir {
 public:
  SharedDir() {
    std::string name;
    if (ringdp::test::world_rank() == 0) {
      std::string pattern = (fs::temp_directory_path() / "ringdp-ckpt-XXXXXX").string();
      if (::mkdtemp(pattern.data()) != nullptr) name = pattern;
    }
    int length = static_cast<int>(name.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
    name.resize(static_cast<std::size_t>(length));
    MPI_Bcast(name.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
    path_ = name;
  }
  ~SharedDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    std::error_code ec;
    if (ringdp::test::world_rank() == 0) fs::remove_all(path_, ec);
  }
  SharedDir(const SharedDir&) = delete;
  SharedDir& operator=(const SharedDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A checkpoint with distinct, non-trivial values (including a negative zero, a denormal
// and an infinity, so any conversion or rounding would show), the same on every rank.
Checkpoint sample_checkpoint(std::size_t n, std::int64_t step) {
  Checkpoint c;
  c.model_spec = "7-5-3";
  c.ranks = ringdp::test::world_size();
  c.epoch = 2;
  c.step_in_epoch = 3;
  c.step = step;
  c.parameters.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    c.parameters[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  if (n > 3) {
    c.parameters[0] = -0.0f;
    c.parameters[1] = 1e-42f;
    c.parameters[2] = INFINITY;
  }
  c.optimizer = "adam";
  c.optimizer_steps = 123;
  c.optimizer_state = {{"adam.m", std::vector<float>(n, 0.25f)}, {"adam.v", c.parameters}};
  c.sampling = "global";
  c.batch_size = 16;
  c.virtual_ranks = 0;
  c.seed = 0xdeadbeefcafeULL;
  c.metadata = {{"flags", "--lr 0.1 --epochs 3"}, {"git_hash", "abc"}};
  return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool equal(const Checkpoint& a, const Checkpoint& b) {
  bool ok = a.model_spec == b.model_spec && a.ranks == b.ranks && a.epoch == b.epoch &&
            a.step_in_epoch == b.step_in_epoch && a.step == b.step &&
            same_bits(a.parameters, b.parameters) && a.optimizer == b.optimizer &&
            a.optimizer_steps == b.optimizer_steps && a.sampling == b.sampling &&
            a.batch_size == b.batch_size && a.virtual_ranks == b.virtual_ranks &&
            a.seed == b.seed && a.optimizer_state.size() == b.optimizer_state.size();
  for (std::size_t i = 0; ok && i < a.optimizer_state.size(); ++i) {
    ok = a.optimizer_state[i].name == b.optimizer_state[i].name &&
         same_bits(a.optimizer_state[i].values, b.optimizer_state[i].values);
  }
  // Metadata may come back in another order (HDF5 lists attributes by name).
  auto sorted = [](auto m) {
    std::sort(m.begin(), m.end());
    return m;
  };
  return ok && sorted(a.metadata) == sorted(b.metadata);
}

CheckpointExpectation expectation_for(const Checkpoint& c) {
  return {c.model_spec, c.ranks, c.parameters.size(), c.optimizer, {"adam.m", "adam.v"}};
}

struct Failure {
  bool threw = false;
  bool collective = false;
  std::string message;
};

Failure try_load(const ringdp::Communicator& comm, const std::string& path,
                 const CheckpointExpectation* expected = nullptr) {
  Failure f;
  try {
    static_cast<void>(ringdp::train::load_checkpoint(comm, path, expected));
  } catch (const ringdp::Error& e) {
    f = {true, e.collective(), e.what()};
  }
  return f;
}

// Every rank threw the same collective Error containing `part`.
bool all_failed_with(const Failure& f, const std::string& part) {
  const bool ok = f.threw && f.collective && f.message.find(part) != std::string::npos;
  if (!ok) UNSCOPED_INFO("message: " << f.message);
  return all_ranks(ok) && ringdp::test::same_on_all_ranks(
                              ringdp::test::hash_bytes(f.message.data(), f.message.size()));
}

// Reads /parameters with the plain HDF5 C API (the reference for what the file holds).
std::vector<float> read_parameters_directly(const std::string& path) {
  std::vector<float> values;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return values;
  const hid_t dataset = H5Dopen2(file, "/parameters", H5P_DEFAULT);
  const hid_t space = H5Dget_space(dataset);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  values.resize(n);
  H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(dataset);
  H5Fclose(file);
  return values;
}

// File offset of the first stored chunk of /parameters (where its float data starts).
haddr_t parameter_data_offset(const std::string& path) {
  haddr_t offset = HADDR_UNDEF;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dataset = H5Dopen2(file, "/parameters", H5P_DEFAULT);
  hsize_t chunk_offset[1] = {0};
  unsigned mask = 0;
  hsize_t size = 0;
  H5Dget_chunk_info_by_coord(dataset, chunk_offset, &mask, &offset, &size);
  H5Dclose(dataset);
  H5Fclose(file);
  return offset;
}

std::vector<std::string> checkpoint_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("checkpoint round trip: every rank gets the bits rank 0 wrote", "[checkpoint]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  SharedDir dir;
  const Checkpoint c = sample_checkpoint(300000, 77);  // more than one 1 MiB chunk
  const std::string path = ringdp::train::save_checkpoint(comm, dir.path(), c);
  CHECK(all_ranks(path == dir.file("checkpoint-s00000077.h5")));

  const CheckpointExpectation expect = expectation_for(c);
  const Checkpoint loaded = ringdp::train::load_checkpoint(comm, path, &expect);
  CHECK(all_ranks(equal(loaded, c)));

  // An independent reader sees the same arena.
  bool direct = true;
  if (comm.rank() == 0) direct = same_bits(read_parameters_directly(path), c.parameters);
  CHECK(all_ranks(direct));
  // No temporary file is left beside it.
  bool clean = true;
  if (comm.rank() == 0)
    clean = checkpoint_names(dir.path()) == std::vector<std::string>{"checkpoint-s00000077.h5"};
  CHECK(all_ranks(clean));
}

TEST_CASE("checkpoints: the last K are kept and latest_checkpoint finds the newest",
          "[checkpoint]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  SharedDir dir;
  CHECK(all_ranks(ringdp::train::latest_checkpoint(comm, dir.path()).empty()));
  for (std::int64_t step : {5, 10, 100, 15, 1000}) {
    static_cast<void>(
        ringdp::train::save_checkpoint(comm, dir.path(), sample_checkpoint(10, step), 2));
  }
  bool kept = true;
  if (comm.rank() == 0) {
    kept = checkpoint_names(dir.path()) ==
           std::vector<std::string>{"checkpoint-s00000100.h5", "checkpoint-s00001000.h5"};
  }
  CHECK(all_ranks(kept));
  // A leftover temporary file of an interrupted write is never taken for a checkpoint.
  if (comm.rank() == 0) std::ofstream(dir.file(".checkpoint-s00009999.h5.tmp-1")) << "partial";
  const std::string latest = ringdp::train::latest_checkpoint(comm, dir.path());
  CHECK(all_ranks(latest == dir.file("checkpoint-s00001000.h5")));
}

TEST_CASE("bad checkpoints: the same clear Error on every rank", "[checkpoint]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  SharedDir dir;
  const Checkpoint c = sample_checkpoint(5000, 42);
  const std::string good = ringdp::train::save_checkpoint(comm, dir.path(), c);
  const CheckpointExpectation expect = expectation_for(c);

  SECTION("missing file") {
    CHECK(all_failed_with(try_load(comm, dir.file("nope.h5")), "does not exist"));
  }
  SECTION("not an HDF5 file") {
    if (comm.rank() == 0) std::ofstream(dir.file("text.h5")) << "just some text, no HDF5 here\n";
    CHECK(all_failed_with(try_load(comm, dir.file("text.h5")), "not an HDF5 file"));
  }
  SECTION("truncated to half") {
    if (comm.rank() == 0) {
      fs::copy_file(good, dir.file("half.h5"));
      fs::resize_file(dir.file("half.h5"), fs::file_size(good) / 2);
    }
    CHECK(all_failed_with(try_load(comm, dir.file("half.h5")), "half.h5"));
  }
  SECTION("a flipped byte in the parameter data") {
    if (comm.rank() == 0) {
      fs::copy_file(good, dir.file("flip.h5"));
      const haddr_t offset = parameter_data_offset(good);
      std::fstream f(dir.file("flip.h5"), std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(offset + 4000));
      char byte = 0;
      f.read(&byte, 1);
      byte = static_cast<char>(byte ^ 0x10);
      f.seekp(static_cast<std::streamoff>(offset + 4000));
      f.write(&byte, 1);
    }
    CHECK(all_failed_with(try_load(comm, dir.file("flip.h5")), "corrupt"));
  }
  SECTION("an HDF5 file that is not a checkpoint") {
    if (comm.rank() == 0) {
      const hid_t file =
          H5Fcreate(dir.file("other.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
      H5Fclose(file);
    }
    CHECK(all_failed_with(try_load(comm, dir.file("other.h5")), "not a ringdp checkpoint"));
  }
  SECTION("a header claiming 2^40 parameters over an empty file") {
    if (comm.rank() == 0) {
      // The good file, with /parameters replaced by a huge, never written dataset.
      fs::copy_file(good, dir.file("huge.h5"));
      const hid_t file = H5Fopen(dir.file("huge.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
      H5Ldelete(file, "/parameters", H5P_DEFAULT);
      const hsize_t n = hsize_t{1} << 40;
      const hsize_t chunk = 1024;
      const hid_t space = H5Screate_simple(1, &n, nullptr);
      const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(dcpl, 1, &chunk);
      const hid_t dataset =
          H5Dcreate2(file, "/parameters", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      H5Dclose(dataset);
      H5Pclose(dcpl);
      H5Sclose(space);
      H5Fclose(file);
    }
    CHECK(all_failed_with(try_load(comm, dir.file("huge.h5")), "does not hold them"));
  }
  SECTION("model spec mismatch") {
    CheckpointExpectation other = expect;
    other.model_spec = "7-6-3";
    CHECK(all_failed_with(try_load(comm, good, &other), "model spec mismatch"));
  }
  SECTION("rank count mismatch") {
    CheckpointExpectation other = expect;
    other.ranks = expect.ranks + 1;
    CHECK(all_failed_with(try_load(comm, good, &other), "rank count mismatch"));
  }
  SECTION("optimizer mismatch") {
    CheckpointExpectation other = expect;
    other.optimizer = "sgd";
    other.optimizer_state_names = {"momentum"};
    CHECK(all_failed_with(try_load(comm, good, &other), "optimizer mismatch"));
  }
  SECTION("the good file still loads") { CHECK(all_ranks(!try_load(comm, good, &expect).threw)); }
}

TEST_CASE("metrics CSV: rows flushed to a partial file, published complete at close", "[metrics]") {
  SharedDir dir;
  bool ok = true;
  if (ringdp::test::world_rank() == 0) {
    const std::string path = dir.file("m.csv");
    {
      ringdp::train::MetricsCsv csv(path);
      ringdp::train::MetricsRow row;
      row.kind = "epoch";
      row.test_loss = NAN;
      row.test_accuracy = 0.5;
      for (int e = 1; e <= 3; ++e) {
        row.epoch = e;
        row.step = 10 * e;
        row.train_loss = 1.0 / e;
        csv.write(row);
      }
      // Before close: the rows are on disk in the partial file, the final name is absent.
      std::ifstream partial(path + ".partial");
      std::stringstream text;
      text << partial.rdbuf();
      const std::string content = text.str();
      ok = ok && !fs::exists(path) && std::count(content.begin(), content.end(), '\n') == 4;
      csv.close();
    }
    ok = ok && fs::exists(path) && !fs::exists(path + ".partial");
    std::ifstream in(path);
    std::string header;
    std::getline(in, header);
    ok = ok &&
         header.starts_with("kind,epoch,step,lr,train_loss,train_accuracy,test_loss,test_accuracy");
    std::string line;
    std::getline(in, line);
    // Epoch 1: loss 1, test loss NaN written as an empty cell, accuracy 0.5.
    ok = ok && line.starts_with("epoch,1,10,0,1,0,,0.5,");
    // A resumed run keeps the rows up to its checkpoint's step (20) and adds its own.
    {
      ringdp::train::MetricsCsv csv(path, 20);
      ringdp::train::MetricsRow row;
      row.kind = "epoch";
      row.epoch = 3;
      row.step = 30;
      row.train_loss = 0.25;
      csv.write(row);
      csv.close();
    }
    std::ifstream again(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(again, l);) lines.push_back(l);
    ok = ok && lines.size() == 4 && lines[1].starts_with("epoch,1,10,") &&
         lines[2].starts_with("epoch,2,20,") && lines[3].starts_with("epoch,3,30,0,0.25,");
  }
  CHECK(all_ranks(ok));
}
