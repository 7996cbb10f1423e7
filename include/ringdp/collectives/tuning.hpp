#pragma once
/// \file
/// The measured knobs of the collectives: the ring's segment size and the choice Auto
/// makes. Defaults come from measurements on the development machine (see
/// lib/collectives/select.cpp and allreduce_ring.cpp for what was measured).

#include <cstddef>

#include "ringdp/collectives/types.hpp"

namespace ringdp {

/// The algorithm Auto runs for an allreduce of `bytes` bytes over `ranks` ranks (never
/// ParameterServer). Ignores RINGDP_ALGORITHM. Pure function: the same on every rank.
[[nodiscard]] Algorithm select_algorithm(std::size_t bytes, int ranks) noexcept;

/// The algorithm allreduce runs for `requested`: `requested` itself unless it is Auto,
/// then RINGDP_ALGORITHM if set, else select_algorithm(bytes, ranks).
[[nodiscard]] Algorithm resolve_algorithm(Algorithm requested, std::size_t bytes, int ranks);

/// Segment size of the ring allreduce in bytes: each chunk moves in segments of this
/// size, so that the transfer of one overlaps the reduction of the previous. Default
/// measured (see allreduce_ring.cpp), overridable with RINGDP_SEGMENT_BYTES.
[[nodiscard]] std::size_t ring_segment_bytes() noexcept;

/// Sets the ring segment size in bytes for the whole process (rounded up to at least one
/// element per segment). Set the same value on every rank, outside collectives:
/// ranks with different segment sizes deadlock. Thread-safe (atomic).
void set_ring_segment_bytes(std::size_t bytes) noexcept;

}  // namespace ringdp
