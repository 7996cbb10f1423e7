#pragma once
// Helpers for the data tests: a temporary directory shared by the ranks, small HDF5 files
// written with the HDF5 C API, and direct reads to compare the loader against.

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ringdp/data/loader.hpp"

namespace ringdp::test {

/// Collective: a fresh directory, unique to this run and rank count (rank 0 creates it
/// and broadcasts the name), removed by rank 0 on destruction after a barrier.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// What to write.
struct FileSpec {
  std::size_t samples = 100;
  std::vector<std::size_t> feature_shape = {6};
  bool float32 = false;
  std::size_t chunk_rows = 10;  // 0: contiguous
  int gzip = 1;                 // 0: none
  bool resizable = false;       // images extensible along rows (chunks may exceed samples)
  int classes_attribute = 5;    // 0: no attribute
  long long label_count = -1;   // -1: one label per sample
  bool float_labels = false;    // write labels as float64 (invalid)
  bool int32_images = false;    // write images as int32 (unsupported)
  std::string images = "/train/images";
  std::string labels = "/train/labels";
  /// Label of row i (default: i mod 5).
  std::function<long long(std::size_t)> label = [](std::size_t i) {
    return static_cast<long long>(i % 5);
  };
};

/// Value of feature j of row i as written: distinct per (i, j) so misplaced rows show.
std::uint8_t byte_value(std::size_t row, std::size_t j);
float float_value(std::size_t row, std::size_t j);

/// Rank 0 writes the file (serial HDF5), then a barrier. Collective.
void write_file(const std::string& path, const FileSpec& spec);

/// Reads row `row` of `dataset` with the plain HDF5 C API as float values (uint8 scaled
/// by 1/255 like the loader); the reference the loader is compared with.
struct DirectRows {
  std::vector<float> values;  // rows x features
  std::vector<int> labels;
};
DirectRows read_direct(const std::string& path, const std::string& images,
                       const std::string& labels, const std::vector<std::uint64_t>& rows);

/// True when the batch's columns and labels equal, bit for bit, its rows (b.indices) read
/// with read_direct() from the datasets `spec` names. Rank-local.
bool matches_direct(const data::Batch& b, const std::string& path, const FileSpec& spec);

/// Collective: the concatenation of every rank's vector, in rank order.
std::vector<std::uint64_t> gather_all(const std::vector<std::uint64_t>& mine,
                                      MPI_Comm comm = MPI_COMM_WORLD);

}  // namespace ringdp::test

namespace ringdp::test {

/// Every byte of dataset `name` of `path`, read with its own stored type (rank-local).
std::vector<unsigned char> read_dataset_bytes(const std::string& path, const std::string& name);

}  // namespace ringdp::test
