#pragma once
// Output files appear whole or not at all.

#include <string>

namespace ringdp::bench {

/// Writes `contents` to `<path>.tmp.<pid>` in the same directory, then renames it to
/// `path`, so a reader (or a crash) never sees a half-written file. Throws IoError naming
/// the file and the system's reason when it cannot.
void write_file_atomically(const std::string& path, const std::string& contents);

/// The contents of `path`, or an empty string when it does not exist. Throws IoError when
/// it exists but cannot be read.
std::string read_file_if_exists(const std::string& path);

/// Throws IoError when `path` cannot be created (tries its temporary name, then removes
/// it): lets a run fail at the start rather than after the measurement.
void check_writable(const std::string& path);

}  // namespace ringdp::bench
