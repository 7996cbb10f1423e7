#pragma once
// Crash-safe publication of files: write under a temporary name in the same directory,
// flush it to the disk, rename it over the final name, flush the directory. rename() within
// one file system is atomic, so a reader (or a run after a crash) sees either the old file
// or the complete new one, never a prefix. Private to the library.

#include <string>

namespace ringdp::train::detail {

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

}  // namespace ringdp::train::detail
