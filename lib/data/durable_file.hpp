#pragma once
// Crash-safe publication of files: write under a temporary name in the same directory,
// flush it to the disk, rename it over the final name, flush the directory. rename() within
// one file system is atomic, so a reader (or a run after a crash) sees either the old file
// or the complete new one, never a prefix. Private to the library: the data layer (synth)
// and the train layer (checkpoints, metrics, timeline) publish their files through it.

#include <cstddef>
#include <functional>
#include <string>

namespace ringdp::data::detail {

/// A temporary name for `path` in the same directory (so the final rename stays within
/// one file system): "<dir>/.<name>.tmp-<pid>". Hidden, and never matching the patterns
/// tools look for (checkpoint-s*.h5).
[[nodiscard]] std::string temporary_path_for(const std::string& path);

/// fsync()s the file at `path` (written and closed by someone else, e.g. HDF5). Throws
/// IoError naming the file on failure.
void sync_file(const std::string& path);

/// fsync()s `temporary`, renames it to `path` (replacing an existing file) and fsync()s the
/// directory, so the new name survives a power loss. Throws IoError naming both paths; on
/// failure the temporary file is removed. Local, no MPI.
void publish_file(const std::string& temporary, const std::string& path);

/// Removes from `directory` the temporary files left by writers that were killed: names
/// made by temporary_path_for() whose final name satisfies `matches` and whose process id
/// is not a live process on this host (nor this process). Another live writer's temporary
/// is never touched on this host; on a file system shared by several hosts this assumes,
/// as checkpoint pruning does, that one job at a time writes to the directory. Returns the
/// number removed; errors are ignored (a stray file is harmless, only untidy). Local.
std::size_t remove_stale_temporaries(const std::string& directory,
                                     const std::function<bool(const std::string&)>& matches);

}  // namespace ringdp::data::detail
