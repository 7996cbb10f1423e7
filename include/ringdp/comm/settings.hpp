#pragma once
/// \file
/// Every RINGDP_* variable the library reads, read in this one place (the drop-in
/// library's own RINGDP_INTERPOSE* variables excepted: lib/interpose/settings.cpp).
///
/// One rule for all of them: an unset or empty variable takes its default; any other value
/// must be well formed, or settings() throws InvalidArgument naming the variable and the
/// value ("RINGDP_SEGMENT_BYTES='64k' is not a positive byte count"). The ones that must be
/// the same on every rank (algorithm, segment, tuning file, node size, check mode, bucket
/// and fusion sizes) are agreed when a Communicator is built from an MPI communicator:
/// ranks started with different values, or with a malformed value on some rank, all throw
/// the same InvalidArgument there (an unreadable tuning file: IoError), instead of
/// reducing garbage or deadlocking later.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ringdp/comm/tuning_table.hpp"
#include "ringdp/error.hpp"
#include "ringdp/types.hpp"

namespace ringdp {

/// The RINGDP_* settings of this process, as read from its environment.
struct Settings {
  /// RINGDP_ALGORITHM: what Algorithm::Auto runs, at every size; nullopt when unset.
  std::optional<Algorithm> algorithm;
  /// RINGDP_SEGMENT_BYTES: the ring allreduce's segment size; 0 when unset.
  std::size_t segment_bytes = 0;
  /// RINGDP_TUNING: path of a tuning file (`ringdp-bench --tune`); empty when unset.
  std::string tuning_file;
  /// The tuning file, read and parsed with the settings; null when RINGDP_TUNING is unset.
  std::shared_ptr<const TuningTable> tuning;
  /// RINGDP_NODE_SIZE: treat each k consecutive ranks as one node (they must share memory);
  /// 0 when unset: nodes are what MPI_COMM_TYPE_SHARED finds.
  int node_size = 0;
  /// RINGDP_CHECK (0 or 1): check mode on every new Communicator.
  bool check = false;
  /// RINGDP_BUCKET_BYTES: the GradientReducer's default bucket size; 0 when unset.
  std::size_t bucket_bytes = 0;
  /// RINGDP_FUSION_BYTES: the GradientReducer's default fusion limit (0: no fusion);
  /// nullopt when unset.
  std::optional<std::size_t> fusion_bytes;
  /// RINGDP_STALL_SECONDS: seconds of one wait before a stall report (0: never).
  double stall_seconds = 60.0;
  /// RINGDP_STALL_ABORT_SECONDS: seconds of one wait before the job is aborted (0: never).
  double stall_abort_seconds = 0.0;
  /// RINGDP_TEST_STALL_RANK / _SECONDS / _STEP, a test-only hook (ringdp/comm/wait.hpp):
  /// world rank test_stall_rank sleeps test_stall_seconds at its first collective at a
  /// step >= test_stall_step. Rank -1: off.
  int test_stall_rank = -1;
  double test_stall_seconds = 0.0;
  std::int64_t test_stall_step = -1;
};

/// The settings of this process, read from the environment at the first call. Throws
/// InvalidArgument (IoError for an unreadable tuning file), on every call, naming the
/// first malformed variable and its value (for a malformed tuning file: its line). Local;
/// thread-safe.
[[nodiscard]] const Settings& settings();

/// The settings as read, without throwing: when a variable is malformed, `values` are all
/// defaults and `error` (empty when all are well formed) names it, with its kind. For code that must
/// go on to tell the other ranks (the agreement at a Communicator's construction) or that
/// runs where throwing is not allowed.
struct SettingsReading {
  Settings values;
  ErrorKind error_kind = ErrorKind::InvalidArgument;
  std::string error;
};
[[nodiscard]] const SettingsReading& read_settings() noexcept;

class Communicator;

/// Collective over `comm`: agrees that every rank read well-formed settings, and that
/// those that must match (algorithm, segment, tuning file, node size, check mode, bucket
/// and fusion sizes) do. Otherwise every rank throws the same error: the malformed
/// variable of the lowest failing rank (InvalidArgument; IoError for an unreadable tuning
/// file), or InvalidArgument naming the variable that differs and the ranks that differ.
/// Every Communicator built from an MPI communicator calls it (its split() and
/// duplicate() need not: their ranks agreed already). One small reduction.
void agree_on_settings(const Communicator& comm);

/// What the launcher tells this process through the environment it sets. Not RINGDP_*
/// settings and never agreed (each process has its own); read here because this module is
/// the one that reads the environment.
struct LaunchInfo {
  /// Started by Open MPI's launcher (mpirun, or its daemon on other nodes): the
  /// OMPI_COMM_WORLD_SIZE it sets is present. Open MPI gives each such rank's stdout a
  /// pseudo-terminal of its own, whatever the launcher's own output is.
  bool open_mpi = false;
};

/// The launch facts of this process, read at the first call. Local; thread-safe.
[[nodiscard]] const LaunchInfo& launch_info() noexcept;

}  // namespace ringdp
