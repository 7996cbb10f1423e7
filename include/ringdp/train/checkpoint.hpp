#pragma once
/// \file
/// Training checkpoints in HDF5: the parameter arena, the optimizer state, the position
/// in the run and the model spec, written atomically (temporary name, then rename).

#include <cstdint>
#include <string>
#include <string_view>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/optimizer.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/train/trainer.hpp"

namespace ringdp::train {

/// The scalars of a checkpoint. File layout (readable with h5dump and h5py):
/// `/parameters` (float32, N), `/optimizer/<state name>` (float32, N each), and attributes
/// of the root group: `format` (1), `model_spec`, `optimizer`, `ranks`, `epoch`,
/// `step_in_epoch`, `global_step`, `optimizer_steps`.
struct CheckpointInfo {
  std::string model_spec = {};
  std::string optimizer = {};  ///< Optimizer::kind() (save_checkpoint writes the optimizer's own)
  std::int64_t ranks = 0;
  TrainPosition position = {};
  std::int64_t optimizer_steps = 0;  ///< Optimizer::step_count()
};

/// Collective over `comm`: rank 0 writes `path` + ".tmp" and renames it to `path`, so a
/// crash never leaves a half-written checkpoint under the real name. Every rank throws
/// the same IoError when rank 0 fails. Serialises HDF5 with data::hdf5_mutex().
void save_checkpoint(const Communicator& comm, const std::string& path,
                     const nn::Sequential<float>& model, nn::Optimizer<float>& optimizer,
                     const CheckpointInfo& info);

/// Collective over `comm`: every rank reads `path` and checks it (an HDF5 checkpoint of
/// this format, `expected_spec` when not empty, the model's parameter count, the
/// optimizer's kind and state sizes); then the ranks agree, so either all restore the
/// parameters and optimizer state and return the info, or all throw the same Error
/// naming the file and the problem.
CheckpointInfo load_checkpoint(const Communicator& comm, const std::string& path,
                               nn::Sequential<float>& model, nn::Optimizer<float>& optimizer,
                               std::string_view expected_spec);

}  // namespace ringdp::train
