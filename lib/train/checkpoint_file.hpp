#pragma once
// The HDF5 side of checkpoints: one local write and one local, validating read. The
// collective protocol (rank 0 writes, everyone agrees) is in checkpoint.cpp.

#include <string>

#include "ringdp/train/checkpoint.hpp"

namespace ringdp::train::detail {

/// Writes `checkpoint` to `path` (created or truncated) and closes it. Throws IoError.
/// The caller holds io::hdf5_mutex().
void write_checkpoint_file(const std::string& path, const Checkpoint& checkpoint);

/// Reads a checkpoint file and checks its structure: the format tag, every attribute and
/// dataset present with the right class and rank, array lengths equal to the parameter
/// count and backed by stored data (a hostile header cannot make us allocate more than
/// the file holds), checksums. Throws IoError naming `path` and the problem. The caller
/// holds io::hdf5_mutex().
[[nodiscard]] Checkpoint read_checkpoint_file(const std::string& path);

}  // namespace ringdp::train::detail
