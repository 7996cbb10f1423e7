#pragma once
/// \file
/// A per-step event record of training, and its Chrome trace JSON (chrome://tracing,
/// Perfetto): one process per rank, the training thread and the reducer's progress thread
/// as two tracks.

#include <cstdint>
#include <string>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/types.hpp"

namespace ringdp::train {

/// What an event is.
enum class EventKind { Data, Forward, Metrics, Backward, Allreduce, Wait, Optimizer, Evaluate };

/// "data", "forward", "metrics", "backward", "allreduce", "wait", "optimizer", "evaluate".
[[nodiscard]] const char* to_string(EventKind kind) noexcept;

/// One interval of one rank. Times in microseconds since the trainer's origin (taken
/// right after the initial parameter broadcast, so ranks' origins roughly agree).
struct TimelineEvent {
  EventKind kind = EventKind::Data;
  std::int64_t step = 0;  ///< global step
  double start_us = 0.0;
  double duration_us = 0.0;
  std::int64_t bytes = 0;                 ///< Allreduce: bytes of the reduction
  std::int64_t buckets = 0;               ///< Allreduce: buckets fused in it
  Algorithm algorithm = Algorithm::Auto;  ///< Allreduce: algorithm run
  /// Allreduce events run on the progress thread (track 1); the others on track 0.
  [[nodiscard]] int track() const noexcept { return kind == EventKind::Allreduce ? 1 : 0; }
};

/// Collective over `comm`: gathers every rank's events on rank 0, which writes them as a
/// Chrome trace ("traceEvents", complete events "ph":"X", pid = rank, tid = track, args
/// with step, bytes, buckets and algorithm; each rank's events in start order) to `path`
/// through a temporary file renamed at the end. Every rank throws the same IoError when
/// rank 0 cannot write.
void write_chrome_trace(const Communicator& comm, const std::string& path,
                        const std::vector<TimelineEvent>& events);

}  // namespace ringdp::train
