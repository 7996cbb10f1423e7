#pragma once
// The tuning file ringdp-bench --tune writes: which algorithm Auto should run from which
// message size on, per rank count, learnt from a measurement on the machine at hand.
//
// Format (text; '#' starts a comment; the library's reader, with the full rules, is
// include/ringdp/comm/tuning_table.hpp): one rule per line,
//     ranks <n> bytes <min-bytes> <algorithm>
//     ranks <n> segment <bytes>
// meaning: at exactly <n> ranks, messages of at least <min-bytes> bytes use <algorithm>
// (ring, rd, mpi, shm or hier), until the next rule of the same <n>; and the ring cuts its chunks
// into segments of <bytes> (the segment the run used). The rules of one <n>
// are sorted by size and the first starts at 0. Read through RINGDP_TUNING by Auto.

#include <span>
#include <string>

#include "measure.hpp"
#include "run_info.hpp"

namespace ringdp::bench {

/// Relative margin by which another algorithm must beat the one already chosen for the
/// previous size before the rules switch: measured noise must not make Auto flip-flop.
inline constexpr double kSwitchMargin = 0.05;

/// The text of the tuning file: the rules of `existing` (the current file's text, or
/// empty) for other rank counts, kept as they are, and new rules for `ranks` from `rows`
/// (the fastest of ring, rd, mpi, shm and hier, as measured, at each size, with the margin
/// above), plus a segment
/// rule for `ranks` when `segment_bytes` > 0 (the segment the ring was measured with).
std::string tuning_file(const std::string& existing, std::span<const Row> rows, int ranks,
                        std::size_t segment_bytes, const RunInfo& info,
                        const std::string& measured_with);

}  // namespace ringdp::bench
