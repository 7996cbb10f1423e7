#pragma once
/// \file
/// A learnable synthetic classification dataset, written in parallel.

#include <cstddef>
#include <cstdint>
#include <string>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/data/h5_dataset.hpp"

namespace ringdp::data {

/// What synthesize() writes.
struct SynthOptions {
  std::size_t samples = 10000;   ///< rows of /train/images and /train/labels
  std::size_t test_samples = 0;  ///< rows of /test/... (0: no test split)
  std::size_t features = 32;     ///< values per sample
  int classes = 10;
  std::size_t hidden = 32;  ///< width of the teacher network's hidden layer
  std::uint64_t seed = 0;
  ElementType type = ElementType::Float32;
  std::size_t chunk_rows = 1024;                    ///< rows per HDF5 chunk
  int gzip = 1;                                     ///< deflate level, 0 = uncompressed
  std::size_t block_bytes = std::size_t{32} << 20;  ///< generated per write per rank
};

/// Writes a synthetic dataset to `path`. Collective over `comm`.
///
/// Sample i (a global row index; the test split continues after the training rows) is a
/// vector of standard normal values drawn from a stream keyed by (seed, i), so its bytes
/// do not depend on the number of ranks: the datasets written by 2 ranks equal those
/// written by 1, byte for byte. Its label is the argmax of a fixed random teacher network
/// (one tanh hidden layer, weights from the seed) applied to the values as stored
/// (uint8 stores clamp(round(32 v + 128), 0, 255) and the teacher sees (q - 128) / 32).
///
/// The rows are cut into chunk-aligned ranges, one per rank; each rank generates its range
/// in blocks of about `block_bytes` and writes them with collective MPI-IO (parallel HDF5),
/// so N may exceed the memory of the job. The file is written to `path` + ".partial" and,
/// once every rank has closed it, flushed to disk and renamed by rank 0: `path` only ever
/// names a complete file (a killed job leaves at most the ".partial" file, which the next
/// run overwrites; on an error it is removed). Errors are agreed: every rank throws the
/// same Error. Holds io::hdf5_mutex() while it runs.
void synthesize(const Communicator& comm, const std::string& path, const SynthOptions& options);

}  // namespace ringdp::data
