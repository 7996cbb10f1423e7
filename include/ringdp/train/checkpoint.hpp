#pragma once
/// \file
/// Training checkpoints: one HDF5 file holding everything a run needs to continue
/// bit-identically (parameter arena, optimizer state, position in the data order, model
/// spec, rank count) plus metadata, written crash-safely by rank 0 and loaded with the
/// same validation on every rank.
///
/// Layout of a checkpoint file (readable with h5dump and h5py):
/// \code
///   /                      attributes: format = "ringdp-checkpoint", format_version,
///                          model_spec, ranks, epoch, step, step_in_epoch
///   /parameters            float32 [P], the parameter arena (last layer first)
///   /optimizer             attributes: kind ("sgd"|"adam"), steps
///   /optimizer/<name>      float32 [P] per state array ("momentum", "adam.m", "adam.v")
///   /sampler               attributes: mode, batch_size, seed, virtual_ranks, epoch,
///                          step_in_epoch
///   /rng                   attributes: seed, epoch, step_in_epoch (see Checkpoint::seed)
///   /metadata              string attributes: ringdp_version, git_hash, date, flags, ...
/// \endcode
/// Arrays are chunked with HDF5's Fletcher-32 checksum, and the file uses the latest
/// format (checksummed metadata), so flipped bytes and truncation are detected on load.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::train {

/// One named optimizer state array (same length and layout as the parameter arena).
struct NamedArray {
  std::string name;  ///< e.g. "momentum", "adam.m", "adam.v"
  std::vector<float> values;
};

/// Everything a checkpoint holds. The run's random streams (weight initialisation, the
/// per-epoch sample orders) are pure functions of (seed, epoch), so the seed together with
/// the position (epoch, step_in_epoch) IS the random state: nothing else is drawn.
struct Checkpoint {
  std::string model_spec;            ///< e.g. "784-512-256-10"
  int ranks = 0;                     ///< MPI ranks of the run that wrote it
  std::int64_t epoch = 0;            ///< epoch in progress (= completed epochs at a boundary)
  std::int64_t step_in_epoch = 0;    ///< steps of `epoch` already done (0 at a boundary)
  std::int64_t step = 0;             ///< global steps done since the start of training
  std::vector<float> parameters;     ///< the parameter arena
  std::string optimizer;             ///< "sgd" or "adam"
  std::int64_t optimizer_steps = 0;  ///< Optimizer::step_count()
  std::vector<NamedArray> optimizer_state;  ///< Optimizer::state(), in its order
  std::string sampling;                     ///< resolved sampling mode: "global" or "shard"
  std::int64_t batch_size = 0;              ///< per (logical) rank
  std::int64_t virtual_ranks = 0;           ///< SamplerOptions::virtual_ranks
  std::uint64_t seed = 0;                   ///< seed of initialisation and sampling
  /// Free-form run metadata written as string attributes of /metadata (ringdp version,
  /// git hash, date, flags...). Names must be non-empty and unique.
  std::vector<std::pair<std::string, std::string>> metadata;
};

/// What a checkpoint must match to be resumed by this run.
struct CheckpointExpectation {
  std::string model_spec;
  int ranks = 0;
  std::size_t parameter_count = 0;
  std::string optimizer;  ///< kind; the state array names and sizes must match too
  std::vector<std::string> optimizer_state_names;
};

/// The empty string when `checkpoint` fits `expected`, otherwise one sentence naming the
/// first mismatch ("model spec mismatch: checkpoint has 784-64-10, this run 784-32-10").
/// Local, no MPI.
[[nodiscard]] std::string check_compatible(const Checkpoint& checkpoint,
                                           const CheckpointExpectation& expected);

/// File name of the checkpoint after global step `step`: "checkpoint-s00000125.h5".
[[nodiscard]] std::string checkpoint_file_name(std::int64_t step);

/// Collective over `comm`. Rank 0 writes `checkpoint` (only rank 0's argument is used) to
/// a temporary file in `directory` (created if missing), fsyncs it, renames it to
/// checkpoint_file_name(step), fsyncs the directory, then deletes the oldest checkpoints
/// of the directory so that at most `keep` (>= 1) remain. A crash at any moment leaves
/// either the previous set of files or the new one, never a partial checkpoint under a
/// checkpoint name. The temporary is hidden (".checkpoint-s<step>.h5.tmp-<pid>"), so a
/// kill mid-write leaves at most such a file, which loaders never take for a checkpoint;
/// each save also deletes the temporaries of writers that no longer run on this host.
/// Returns the path written on every rank; every rank throws the same Error (collective)
/// when rank 0 fails. Holds io::hdf5_mutex() while it calls HDF5.
std::string save_checkpoint(const Communicator& comm, const std::string& directory,
                            const Checkpoint& checkpoint, int keep = 3);

/// Collective over `comm`: the path of the checkpoint with the highest step in
/// `directory` (as seen by rank 0), or an empty string when there is none. Temporary
/// files of interrupted writes are never returned.
[[nodiscard]] std::string latest_checkpoint(const Communicator& comm, const std::string& directory);

/// Collective over `comm`. Rank 0 reads and validates `path` (a ringdp checkpoint, not
/// truncated or corrupt, arrays of consistent sizes, and, unless `expected` is null,
/// compatible with it); the ranks agree, then rank 0 broadcasts the content. Every rank
/// returns the same Checkpoint, or every rank throws the same Error naming the file and
/// what is wrong. Holds io::hdf5_mutex() while it calls HDF5.
[[nodiscard]] Checkpoint load_checkpoint(const Communicator& comm, const std::string& path,
                                         const CheckpointExpectation* expected = nullptr);

}  // namespace ringdp::train
