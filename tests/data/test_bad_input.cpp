// Every bad input gives the same clear Error on every rank (collective agreement), naming
// the file, the dataset and the problem; never a hang. Run at 1 and 3 ranks.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "data_fixture.hpp"
#include "mpi_test.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/error.hpp"

using ringdp::data::DatasetNames;
using ringdp::data::DatasetOptions;
using ringdp::data::H5Dataset;
using ringdp::data::SamplerOptions;
using ringdp::data::SamplingMode;
using ringdp::data::ShardedLoader;
using ringdp::test::all_ranks;
using ringdp::test::FileSpec;
using ringdp::test::TempDir;

namespace {

struct Failure {
  bool threw = false;
  bool collective = false;
  std::string message;
  ringdp::ErrorKind kind = ringdp::ErrorKind::Generic;
};

template <class Fn>
Failure attempt(Fn&& fn) {
  Failure f;
  try {
    fn();
  } catch (const ringdp::Error& e) {
    f = {true, e.collective(), e.what(), e.kind()};
  }
  return f;
}

// Every rank threw a collective Error of class `kind` (a bad file: IoError, on every rank,
// whichever rank found it) whose text contains each of `parts`, and all ranks hold the
// same text.
bool all_failed_with(const Failure& f, std::initializer_list<std::string> parts,
                     ringdp::ErrorKind kind = ringdp::ErrorKind::Io) {
  bool ok = f.threw && f.collective && f.kind == kind;
  if (f.kind != kind) UNSCOPED_INFO("error class: " << ringdp::to_string(f.kind));
  for (const auto& p : parts) ok = ok && f.message.find(p) != std::string::npos;
  if (!ok) UNSCOPED_INFO("message: " << f.message);
  const bool everywhere = all_ranks(ok);
  return everywhere && ringdp::test::same_on_all_ranks(
                           ringdp::test::hash_bytes(f.message.data(), f.message.size()));
}

std::string fmt_samples(std::size_t n) { return std::to_string(n) + " samples"; }

Failure open(const std::string& path, DatasetOptions options = {}) {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  return attempt([&] { H5Dataset dataset(comm, path, options); });
}

}  // namespace

TEST_CASE("missing file") {
  TempDir dir("bad-missing");
  const std::string path = dir.file("nothing-here.h5");
  CHECK(all_failed_with(open(path), {path, "no such file"}));
}

TEST_CASE("file present on some ranks only: every rank fails, naming the rank that failed") {
  TempDir dir("bad-partial");
  if (ringdp::test::world_size() < 2) return;  // same decision on all ranks
  FileSpec spec;
  const std::string good = dir.file("good.h5");
  ringdp::test::write_file(good, spec);
  const std::string path = ringdp::test::world_rank() == 1 ? dir.file("absent.h5") : good;
  const Failure f = open(path);
  CHECK(all_failed_with(f, {"rank 1", "absent.h5", "no such file"}));
}

TEST_CASE("not an HDF5 file, and a truncated one") {
  TempDir dir("bad-format");
  const std::string text = dir.file("notes.h5");
  if (ringdp::test::world_rank() == 0) std::ofstream(text) << "these are not the bytes of HDF5\n";
  FileSpec spec;
  spec.samples = 2000;
  spec.feature_shape = {50};
  const std::string whole = dir.file("whole.h5");
  ringdp::test::write_file(whole, spec);  // ends with a barrier
  const std::string cut = dir.file("cut.h5");
  if (ringdp::test::world_rank() == 0) {
    std::filesystem::copy_file(whole, cut);
    std::filesystem::resize_file(cut, std::filesystem::file_size(whole) / 2);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK(all_failed_with(open(text), {text, "cannot be opened as HDF5"}));
  CHECK(all_failed_with(open(cut), {cut, "cannot be opened as HDF5", "truncated"}));
}

TEST_CASE("missing dataset or group") {
  TempDir dir("bad-dataset");
  FileSpec spec;
  const std::string path = dir.file("data.h5");
  ringdp::test::write_file(path, spec);
  CHECK(all_failed_with(open(path, {DatasetNames{"/train/images", "/train/targets"}}),
                        {path, "'/train/targets'", "not found"}));
  CHECK(all_failed_with(open(path, {DatasetNames::test()}), {path, "'/test/images'", "not found"}));
  CHECK(all_failed_with(open(path, {DatasetNames{"/train", "/train/labels"}}),
                        {path, "'/train'", "cannot be opened as a dataset"}));
}

TEST_CASE("wrong rank, shape or type") {
  TempDir dir("bad-shape");
  FileSpec flat;
  flat.feature_shape = {};
  const std::string flat_path = dir.file("flat.h5");
  ringdp::test::write_file(flat_path, flat);
  CHECK(all_failed_with(open(flat_path), {flat_path, "'/train/images'", "rank >= 2", "rank 1"}));

  FileSpec empty;
  empty.feature_shape = {0};
  empty.chunk_rows = 0;
  const std::string empty_path = dir.file("empty-features.h5");
  ringdp::test::write_file(empty_path, empty);
  CHECK(all_failed_with(open(empty_path), {empty_path, "empty feature shape"}));

  FileSpec labels_2d;  // images used as labels: rank 2
  const std::string labels_path = dir.file("labels2d.h5");
  ringdp::test::write_file(labels_path, labels_2d);
  CHECK(all_failed_with(open(labels_path, {DatasetNames{"/train/images", "/train/images"}}),
                        {labels_path, "must have rank 1"}));

  FileSpec float_labels;
  float_labels.float_labels = true;
  const std::string fl_path = dir.file("float-labels.h5");
  ringdp::test::write_file(fl_path, float_labels);
  CHECK(all_failed_with(open(fl_path), {fl_path, "'/train/labels'", "must be integers", "float"}));

  FileSpec int_images;
  int_images.int32_images = true;
  const std::string ii_path = dir.file("int-images.h5");
  ringdp::test::write_file(ii_path, int_images);
  CHECK(all_failed_with(open(ii_path), {ii_path, "'/train/images'", "32-bit signed integer",
                                        "not supported (uint8 or float32)"}));
}

TEST_CASE("images and labels of different length") {
  TempDir dir("bad-length");
  FileSpec spec;
  spec.samples = 100;
  spec.label_count = 99;
  const std::string path = dir.file("length.h5");
  ringdp::test::write_file(path, spec);
  CHECK(all_failed_with(
      open(path), {path, "'/train/labels' has 99 labels", "'/train/images' has 100 samples"}));
}

TEST_CASE("labels outside [0, classes)") {
  TempDir dir("bad-labels");
  FileSpec spec;
  spec.samples = 300;
  spec.classes_attribute = 5;
  spec.label = [](std::size_t i) { return i == 211 ? 7LL : static_cast<long long>(i % 5); };
  const std::string path = dir.file("label7.h5");
  ringdp::test::write_file(path, spec);
  CHECK(all_failed_with(open(path),
                        {path, "'/train/labels'", "label 7 of row 211", "outside [0, 5)"}));
  // The caller's class count overrides the attribute.
  CHECK(all_failed_with(open(path, {DatasetNames{}, 3}), {"label 3 of row 3", "outside [0, 3)"}));

  FileSpec negative;
  negative.classes_attribute = 0;  // classes from the labels: a negative one is an error
  negative.label = [](std::size_t i) { return i == 50 ? -2LL : 1LL; };
  const std::string neg_path = dir.file("negative.h5");
  ringdp::test::write_file(neg_path, negative);
  CHECK(all_failed_with(open(neg_path), {neg_path, "label -2 is negative"}));
}

TEST_CASE("fewer samples than ranks") {
  TempDir dir("bad-few");
  FileSpec spec;
  spec.samples = static_cast<std::size_t>(ringdp::test::world_size() - 1);
  const std::string path = dir.file("few.h5");
  ringdp::test::write_file(path, spec);
  CHECK(all_failed_with(open(path), {path, fmt_samples(spec.samples), "fewer than the"}));
}

TEST_CASE("impossible loader options fail on every rank") {
  TempDir dir("bad-options");
  FileSpec spec;
  spec.samples = 100;
  spec.chunk_rows = 60;  // two blocks
  const std::string path = dir.file("options.h5");
  ringdp::test::write_file(path, spec);
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int k = comm.size();
  SamplerOptions s;
  s.virtual_ranks = k + 1;  // not a multiple of k (k + 1 > 1)
  if (k > 1) {
    CHECK(all_failed_with(attempt([&] { ShardedLoader l(comm, H5Dataset(comm, path), s); }),
                          {path, "virtual_ranks", "not a multiple"},
                          ringdp::ErrorKind::InvalidArgument));
  }
  s.virtual_ranks = 3;
  s.mode = SamplingMode::Shard;
  if (k == 1 || k == 3) {
    CHECK(all_failed_with(attempt([&] { ShardedLoader l(comm, H5Dataset(comm, path), s); }),
                          {path, "shard mode needs at least as many blocks as ranks"},
                          ringdp::ErrorKind::InvalidArgument));
  }
}

TEST_CASE("loader options that differ between ranks: every rank names the rank that differs") {
  TempDir dir("bad-differ");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int k = comm.size();
  if (k < 2) return;  // same decision on all ranks
  FileSpec spec;
  spec.samples = 100;
  const std::string path = dir.file("differ.h5");
  ringdp::test::write_file(path, spec);
  const int last = k - 1;
  const int rank = comm.rank();
  SamplerOptions s;
  s.batch_size = rank == last ? 7 : 6;  // the last rank alone differs, not rank 0
  CHECK(all_failed_with(attempt([&] { ShardedLoader l(comm, H5Dataset(comm, path), s); }),
                        {"options differ between ranks",
                         "batch_size is 7 on rank " + std::to_string(last) + " but 6 on rank 0"},
                        ringdp::ErrorKind::Mismatch));
  if (k < 3) return;
  // Ranks 1 and 2 both differ (in the seed): the lowest is named, and both are listed.
  SamplerOptions t;
  t.seed = rank == 1 || rank == 2 ? 9 : 1;
  CHECK(all_failed_with(attempt([&] { ShardedLoader l(comm, H5Dataset(comm, path), t); }),
                        {"seed is 9 on rank 1 but 1 on rank 0", "(ranks 1,2 differ)"},
                        ringdp::ErrorKind::Mismatch));
}

TEST_CASE("a dataset of another shape on one rank: every rank names that rank") {
  TempDir dir("bad-shape-differs");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int k = comm.size();
  if (k < 2) return;  // same decision on all ranks
  // Node-local copies under other paths are fine; a copy of another length is not (the
  // ranks would plan different numbers of steps and hang in the trainer).
  FileSpec spec;
  spec.samples = 100;
  const std::string same = dir.file("same.h5");
  ringdp::test::write_file(same, spec);
  spec.samples = 101;
  const std::string longer = dir.file("longer.h5");
  ringdp::test::write_file(longer, spec);
  const int last = k - 1;
  const Failure f = open(comm.rank() == last ? longer : same);
  CHECK(all_failed_with(
      f,
      {"rank " + std::to_string(last) + ": the ranks opened different datasets: rank " +
           std::to_string(last) + " sees 101 samples",
       "rank 0 sees 100 samples"},
      ringdp::ErrorKind::Mismatch));
}

TEST_CASE("a bad label in the last rank's slice: IoError on every rank, naming that rank") {
  TempDir dir("bad-label-last");
  const int k = ringdp::test::world_size();
  FileSpec spec;
  spec.samples = 300;
  spec.classes_attribute = 5;
  // The last row lies in the last rank's slice of the parallel label scan.
  spec.label = [](std::size_t i) { return i == 299 ? 9LL : static_cast<long long>(i % 5); };
  const std::string path = dir.file("label-last.h5");
  ringdp::test::write_file(path, spec);
  CHECK(all_failed_with(open(path), {"ringdp: rank " + std::to_string(k - 1) + ": '" + path,
                                     "label 9 of row 299", "outside [0, 5)"}));
}
