#pragma once
/// \file
/// The stall inspector: what ringdp says, and does, when a rank waits too long in one of
/// its collectives.
///
/// Every wait of a ringdp collective is a polling loop that looks at the clock now and
/// then. When a rank has waited `report_seconds` in one wait, it sends a small report (the
/// collective's name and sequence number on its communicator, and the caller's
/// StallContext) to rank 0 of the communicator, over a private duplicate made when the
/// Communicator was built, so it never matches other traffic. Rank 0, when it is waiting
/// too, answers each report and prints one line to stderr, e.g.
///
///     ringdp: stall: rank 0 waited 60.2 s in allreduce #1234 (step 57, bucket 2); ranks
///     not arrived: 2 (ranks 1,3 waiting in the same call)
///
/// again every `report_seconds` while the wait lasts, and a last line when it ends. The
/// ranks that never reported are the ones not arrived. When rank 0 does not answer (it is
/// itself the one not arrived), each waiting rank prints one line naming rank 0 instead.
/// After `abort_seconds` the job is ended with abort_job() and that line, instead of
/// hanging. Set both limits above the longest legitimate wait (e.g. rank 0 writing a large
/// checkpoint while the others wait for it).
///
/// Watched: the allreduce algorithms ring, recursive doubling, parameter server, shm and
/// hier (their waits on the node's shared window too), reduce_scatter and allgather over
/// ring and shm, agree(), Communicator::barrier(), check mode, and the agreement on the
/// settings that every Communicator makes when it is built: everything a training step of
/// the Trainer waits in, and every first collective. Not watched (they wait inside MPI):
/// the collectives ringdp hands to MPI whole, i.e. Algorithm::Mpi (MPI_Allreduce, and
/// MPI_Allgather / MPI_Reduce_scatter_block for those companions), broadcast(), and the
/// making of a node's shared window (MPI_Win_allocate_shared, after a watched agreement). A
/// watched wait needs their non-blocking forms, which in Open MPI 4.1 are a different,
/// slower implementation (libnbc): MPI_Iallreduce measured 1.3-1.7x slower at 2 ranks, and
/// the test suite's many small broadcasts, allgathers and reduce-scatters 5-8x slower at 5
/// ranks on 2 cores. They are still numbered, so the sequence numbers agree across ranks.

#include <cstdint>

namespace ringdp {

/// What the caller is doing, named in stall reports: "(step 57, buckets 2-3)". -1 / 0 mean
/// "not set". The Trainer sets the step, the GradientReducer the buckets of each reduction.
struct StallContext {
  std::int64_t step = -1;          ///< the caller's iteration (e.g. the global training step)
  std::int64_t first_bucket = -1;  ///< first bucket of the reduction in progress
  std::int64_t buckets = 0;        ///< number of buckets reduced together from first_bucket
};

/// When the stall inspector reports and aborts, in seconds of one wait; 0 turns either off.
struct StallSettings {
  double report_seconds = 60.0;  ///< RINGDP_STALL_SECONDS (default 60)
  double abort_seconds = 0.0;    ///< RINGDP_STALL_ABORT_SECONDS (default 0: never abort)
};

/// The settings of this process: RINGDP_STALL_SECONDS and RINGDP_STALL_ABORT_SECONDS when
/// set (ringdp/comm/settings.hpp; a malformed one leaves the defaults here and is reported
/// when a Communicator is built), otherwise the defaults, unless set_stall_settings()
/// changed them. Thread-safe; local.
[[nodiscard]] StallSettings stall_settings() noexcept;

/// Replaces the settings of this process (all ranks should use the same values). Throws
/// InvalidArgument on a negative or non-finite value. Thread-safe; local.
void set_stall_settings(const StallSettings& settings);

}  // namespace ringdp
