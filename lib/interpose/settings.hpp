#pragma once
// The interposer's settings, read once from the environment:
//   RINGDP_INTERPOSE=0|1            serve calls (1, default) or pass every call to MPI (0)
//   RINGDP_INTERPOSE_MIN_BYTES=N    pass calls of fewer than N bytes per rank to MPI
//   RINGDP_INTERPOSE_VERBOSE=0|1    rank 0 prints served/passed counts at MPI_Finalize
//   RINGDP_INTERPOSE_STATS=path     rank 0 writes every rank's counts to `path` at
//                                   MPI_Finalize (one line per rank; for tests and scripts)
// RINGDP_ALGORITHM is read by ringdp itself (resolve_algorithm).

#include <cstddef>
#include <string>

namespace ringdp::interpose {

/// Default RINGDP_INTERPOSE_MIN_BYTES, measured on the development machine: below it
/// serving gains nothing over MPI_Allreduce (see settings.cpp for the measurement).
inline constexpr std::size_t kDefaultMinBytes = 16 * 1024;

struct Settings {
  bool enabled = true;
  std::size_t min_bytes = kDefaultMinBytes;
  bool verbose = false;
  std::string stats_path;
  /// Non-empty when a variable holds a value that cannot be parsed: every call that
  /// reaches the serving decision then fails with this message (on every rank alike,
  /// since all ranks see the same environment), rather than silently using a default.
  std::string error;
};

/// The settings, parsed on first use (thread-safe). Never throws.
[[nodiscard]] const Settings& settings() noexcept;

}  // namespace ringdp::interpose
