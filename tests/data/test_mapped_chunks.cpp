// H5Dataset::map_chunk: whole unfiltered chunks viewed in the file's mapping instead of
// copied. The views must hold exactly the bytes HDF5's own read returns, be refused (an
// empty view, the caller copies) wherever a view is not possible, count like reads, and
// fail with an IoError - not a SIGBUS - for a chunk the file no longer holds when it is
// mapped (the file truncated after opening, before the chunk is viewed).
// Run at 1 and 3 ranks: each rank views every chunk of its own opening of the file.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "data_fixture.hpp"
#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/data/h5_dataset.hpp"

using ringdp::data::H5Dataset;
using ringdp::test::all_ranks;
using ringdp::test::FileSpec;
using ringdp::test::TempDir;

namespace {

// 3,000 rows of 784 bytes in chunks of 64 rows (50 KB): 47 chunks, the last one partial.
FileSpec mapped_spec() {
  FileSpec spec;
  spec.samples = 3000;
  spec.feature_shape = {28, 28};
  spec.chunk_rows = 64;
  spec.gzip = 0;
  return spec;
}

// Every full chunk's view equals the C API's bytes and labels; the partial last chunk
// and rows not at a chunk's start give an empty view. Returns the number of views.
std::size_t check_views(const H5Dataset& data, const std::string& path, bool& ok) {
  const auto images = ringdp::test::read_dataset_bytes(path, "/train/images");
  const auto label_bytes = ringdp::test::read_dataset_bytes(path, "/train/labels");
  std::vector<std::int32_t> reference(data.size());
  for (std::size_t i = 0; i < reference.size(); ++i) {
    std::int64_t v = 0;  // the fixture writes int64 labels
    std::memcpy(&v, label_bytes.data() + i * sizeof(v), sizeof(v));
    reference[i] = static_cast<std::int32_t>(v);
  }
  const std::size_t rows = data.chunk_rows();
  const std::size_t bytes = rows * data.row_bytes();
  std::vector<std::int32_t> labels(rows);
  std::size_t views = 0;
  for (std::size_t first = 0; first < data.size(); first += rows) {
    const auto view = data.map_chunk(first, labels);
    if (first + rows > data.size()) {
      ok = ok && view.empty();  // the partial last chunk is copied
      continue;
    }
    const bool same =
        view.size() == bytes &&
        std::memcmp(view.data(), images.data() + first * data.row_bytes(), bytes) == 0 &&
        std::equal(labels.begin(), labels.end(), reference.begin() + first);
    if (!same) UNSCOPED_INFO("chunk at row " << first << " differs from HDF5's read");
    ok = ok && same;
    ++views;
  }
  ok = ok && data.map_chunk(1, labels).empty();  // not a chunk's first row
  return views;
}

}  // namespace

TEST_CASE("map_chunk views whole unfiltered chunks, byte for byte HDF5's read") {
  TempDir dir("mapped");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  for (const bool float32 : {false, true}) {
    FileSpec spec = mapped_spec();
    if (float32) spec.feature_shape = {196};  // 784 bytes of float32 per row
    spec.float32 = float32;
    const std::string path = dir.file(float32 ? "f32.h5" : "u8.h5");
    ringdp::test::write_file(path, spec);
    const H5Dataset data(comm, path);
    bool ok = true;
    const std::size_t views = check_views(data, path, ok);
    INFO((float32 ? "float32" : "uint8") << " rank " << ringdp::test::world_rank());
    CHECK(all_ranks(ok));
    CHECK(all_ranks(views == spec.samples / spec.chunk_rows));
    // Each view counts as a read of its rows, images and labels.
    CHECK(all_ranks(data.counters().rows == views * spec.chunk_rows));
    CHECK(all_ranks(data.counters().bytes == views * spec.chunk_rows * (784 + 4)));
  }
}

TEST_CASE("map_chunk refuses what it cannot view: compressed, small or MPI-IO files") {
  TempDir dir("mapped-refused");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  FileSpec gzip = mapped_spec();
  gzip.gzip = 1;
  FileSpec small;  // 100 rows of 6 bytes in chunks of 10: 10 chunks of 60 bytes
  small.gzip = 0;
  ringdp::test::write_file(dir.file("gzip.h5"), gzip);
  ringdp::test::write_file(dir.file("small.h5"), small);
  ringdp::test::write_file(dir.file("plain.h5"), mapped_spec());
  ringdp::data::DatasetOptions mpiio;
  mpiio.driver = ringdp::data::IoDriver::MpiIo;
  const H5Dataset compressed(comm, dir.file("gzip.h5"));
  // Finding a chunk's address walks HDF5 1.10's whole chunk index: not worth it for
  // chunks this small (10 chunks > 60 bytes / 200).
  const H5Dataset tiny(comm, dir.file("small.h5"));
  const H5Dataset parallel(comm, dir.file("plain.h5"), mpiio);
  std::vector<std::int32_t> labels(64);
  bool ok = true;
  for (std::size_t first : {std::size_t{0}, std::size_t{64}, std::size_t{128}}) {
    ok = ok && compressed.map_chunk(first, labels).empty() &&
         parallel.map_chunk(first, labels).empty();
  }
  ok = ok && tiny.map_chunk(0, labels).empty() && tiny.map_chunk(10, labels).empty();
  ok = ok && compressed.counters().rows == 0 && tiny.counters().rows == 0 &&
       parallel.counters().rows == 0;
  CHECK(all_ranks(ok));
}

TEST_CASE("map_chunk of a chunk truncated away after opening: an IoError, not a crash") {
  TempDir dir("mapped-truncated");
  const int rank = ringdp::test::world_rank();
  ringdp::test::write_file(dir.file("source.h5"), mapped_spec());
  // Each rank its own copy, opened alone, then cut to half: the chunks in the second half
  // of the file are gone (the images dataset spans most of it).
  const std::string path = dir.file("copy-" + std::to_string(rank) + ".h5");
  std::filesystem::copy_file(dir.file("source.h5"), path);
  ringdp::Communicator self(MPI_COMM_SELF);
  const H5Dataset data(self, path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  std::vector<std::int32_t> labels(64);
  const std::size_t last_full = (data.size() / data.chunk_rows() - 1) * data.chunk_rows();
  std::string message;
  try {
    static_cast<void>(data.map_chunk(last_full, labels));
  } catch (const ringdp::IoError& e) {
    message = e.what();
  }
  INFO("rank " << rank << ": " << message);
  CHECK(all_ranks(message.find(path) != std::string::npos));
}
