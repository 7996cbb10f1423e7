#pragma once
/// \file
/// The measured knobs of the collectives: the ring's segment size and the choice Auto
/// makes. Built-in defaults come from measurements on the development machine (see
/// lib/collectives/select.cpp and allreduce_ring.cpp for what was measured); a tuning file
/// measured on the machine at hand (`ringdp-bench --tune FILE`, read through
/// RINGDP_TUNING=FILE) replaces them for the rank counts it covers.

#include <cstddef>

#include "ringdp/comm/node.hpp"
#include "ringdp/comm/tuning_table.hpp"
#include "ringdp/types.hpp"

namespace ringdp {

/// The built-in choice of Auto for an allreduce of `bytes` bytes over `ranks` ranks that
/// share no memory (a rank per node): recursive doubling or the ring. Ignores
/// RINGDP_ALGORITHM and RINGDP_TUNING. Pure function: the same on every rank.
[[nodiscard]] Algorithm select_algorithm(std::size_t bytes, int ranks) noexcept;

/// The built-in choice of Auto for `ranks` ranks laid out on nodes as `nodes` says
/// (Communicator::node_layout()): shm when all share one node, hier when several nodes
/// hold several ranks, else select_algorithm(bytes, ranks). Pure function.
[[nodiscard]] Algorithm select_algorithm(std::size_t bytes, int ranks,
                                         const NodeLayout& nodes) noexcept;

/// The algorithm allreduce runs for `requested`: `requested` itself unless it is Auto,
/// then RINGDP_ALGORITHM if set, then the RINGDP_TUNING file's rule if it has rules for
/// `ranks`, else select_algorithm(bytes, ranks). Local; throws InvalidArgument when
/// RINGDP_ALGORITHM or RINGDP_TUNING is bad (the ranks agreed on both when the
/// Communicator was built, see agree_on_settings(), so they fail on every rank alike).
[[nodiscard]] Algorithm resolve_algorithm(Algorithm requested, std::size_t bytes, int ranks);

/// resolve_algorithm() for a communicator's ranks as they share nodes: the same order
/// (requested, RINGDP_ALGORITHM, RINGDP_TUNING), then the built-in choice of
/// select_algorithm(bytes, ranks, nodes). A tuning-file rule that cannot run on this
/// layout (shm over several nodes) is skipped. What allreduce() runs for Auto.
[[nodiscard]] Algorithm resolve_algorithm(Algorithm requested, std::size_t bytes, int ranks,
                                          const NodeLayout& nodes);

/// The tuning table of the file named by RINGDP_TUNING (read with the settings,
/// ringdp/comm/settings.hpp); nullptr when the variable is unset. Throws what settings()
/// throws: for a file that cannot be read (IoError) or is malformed (InvalidArgument, naming
/// the file and the line). Local; thread-safe.
[[nodiscard]] const TuningTable* tuning_from_environment();

/// The ring's segment size at `ranks` ranks, in bytes: each chunk moves in segments of
/// this size, so that the transfer of one overlaps the reduction of the previous. The
/// value of set_ring_segment_bytes() or RINGDP_SEGMENT_BYTES if either is set, else the
/// RINGDP_TUNING file's segment rule for `ranks`, else the built-in default (measured,
/// see allreduce_ring.cpp). Local; throws like tuning_from_environment().
[[nodiscard]] std::size_t ring_segment_bytes(int ranks);

/// The process-wide segment override in bytes: the last set_ring_segment_bytes() value,
/// else RINGDP_SEGMENT_BYTES, else 0 (none: the tuning file or the default applies).
[[nodiscard]] std::size_t ring_segment_bytes() noexcept;

/// Sets the ring segment size in bytes for the whole process, at every rank count
/// (rounded up to at least one element per segment); 0 removes the override. Set the same
/// value on every rank, outside collectives: ranks with different segment sizes
/// deadlock. Thread-safe (atomic).
void set_ring_segment_bytes(std::size_t bytes) noexcept;

}  // namespace ringdp
