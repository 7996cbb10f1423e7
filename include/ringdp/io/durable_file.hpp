#pragma once
/// \file
/// Crash-safe publication of files: write under a temporary name in the same directory,
/// flush it to the disk, rename it over the final name, flush the directory. rename()
/// within one file system is atomic, so a reader (or a run after a crash, or a power loss)
/// sees either the old file or the complete new one, never a prefix. Every file ringdp
/// writes for a user goes through here: datasets (synth), checkpoints, metrics, timelines,
/// and the benchmark's outputs. Local: no MPI; any thread.

#include <cstddef>
#include <functional>
#include <string>

namespace ringdp::io {

/// A temporary name for `path` in the same directory (so the final rename stays within
/// one file system): "<dir>/.<name>.tmp-<pid>". Hidden, and never matching the patterns
/// tools look for (checkpoint-s*.h5).
[[nodiscard]] std::string temporary_path_for(const std::string& path);

/// fsync()s the file at `path` (written and closed by someone else, e.g. HDF5). Throws
/// IoError naming the file on failure.
void sync_file(const std::string& path);

/// fsync()s `temporary`, renames it to `path` (replacing an existing file) and fsync()s the
/// directory, so the new name survives a power loss. Throws IoError naming both paths; on
/// failure the temporary file is removed.
void publish_file(const std::string& temporary, const std::string& path);

/// Writes `contents` to temporary_path_for(path) and publishes it (publish_file()): `path`
/// is either untouched or holds exactly `contents`, on disk. Throws IoError naming the
/// file and the system's reason; no temporary file is left behind on failure.
void write_file_durably(const std::string& path, const std::string& contents);

/// The contents of `path`, or an empty string when it does not exist. Throws IoError
/// naming the file when it exists but cannot be read.
[[nodiscard]] std::string read_file_if_exists(const std::string& path);

/// Throws IoError naming the file when a file cannot be written at `path`: creates and
/// removes its temporary name, so a run can fail at its start rather than after its work.
/// Leaves an existing `path` untouched.
void check_writable(const std::string& path);

/// Removes from `directory` the temporary files left by writers that were killed: names
/// made by temporary_path_for() whose final name satisfies `matches` and whose process id
/// is not a live process on this host (nor this process). Another live writer's temporary
/// is never touched on this host; on a file system shared by several hosts this assumes,
/// as checkpoint pruning does, that one job at a time writes to the directory. Returns the
/// number removed; errors are ignored (a stray file is harmless, only untidy).
std::size_t remove_stale_temporaries(const std::string& directory,
                                     const std::function<bool(const std::string&)>& matches);

}  // namespace ringdp::io
