// The ranks' agreement on the settings that must match, at every Communicator's birth.
//
// Each rank reads its own environment, and ranks can be started with different ones (an
// MPMD launch, a node-local profile, `mpirun -x` on some hosts only). Ranks that resolve
// Auto to different algorithms, or cut a chunk into different segments, reduce garbage,
// fail with a truncation error, or deadlock. So when a Communicator is built from an MPI
// communicator (a collective already: MPI_Comm_dup), its ranks agree first: one small
// reduction carries "did my settings read cleanly" and the values that must match; any
// difference becomes the same InvalidArgument on every rank, naming the variable.

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <string>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/settings.hpp"

namespace ringdp {
namespace {

// The agreed fields, in the order of the values array.
enum Field { kAlgorithm, kSegment, kTuning, kNodeSize, kCheck, kBucket, kFusion, kFields };

constexpr std::array<const char*, kFields> kVariable = {
    "RINGDP_ALGORITHM", "RINGDP_SEGMENT_BYTES", "RINGDP_TUNING", "RINGDP_NODE_SIZE",
    "RINGDP_CHECK",     "RINGDP_BUCKET_BYTES",  "RINGDP_FUSION_BYTES"};

std::array<std::int64_t, kFields> encode(const Settings& s) {
  std::array<std::int64_t, kFields> v{};
  v[kAlgorithm] = s.algorithm ? static_cast<std::int64_t>(*s.algorithm) : -1;
  v[kSegment] = static_cast<std::int64_t>(s.segment_bytes);
  v[kTuning] = s.tuning ? static_cast<std::int64_t>(s.tuning->hash() == 0 ? 1 : s.tuning->hash()) : 0;
  v[kNodeSize] = s.node_size;
  v[kCheck] = s.check ? 1 : 0;
  v[kBucket] = static_cast<std::int64_t>(s.bucket_bytes);
  v[kFusion] = s.fusion_bytes ? static_cast<std::int64_t>(*s.fusion_bytes) : -1;
  return v;
}

// One field's value as the user would have written it.
std::string shown(int field, std::int64_t value) {
  switch (field) {
    case kAlgorithm:
      return value < 0 ? "unset" : to_string(static_cast<Algorithm>(value));
    case kTuning:
      return value == 0 ? "unset"
                        : fmt::format("a file with content hash {:016x}",
                                      static_cast<std::uint64_t>(value));
    case kFusion:
      return value < 0 ? "unset" : std::to_string(value);
    default:
      return value == 0 ? "unset" : std::to_string(value);
  }
}

std::string describe(const Disagreement& d) {
  int field = 0;
  while (field < kFields && d.reference[field] == d.theirs[field]) ++field;
  return fmt::format(
      "{} differs between ranks: rank 0 has {}, rank {} has {} (ranks differing from rank 0: "
      "{}); every rank must be started with the same value",
      kVariable[field], shown(field, d.reference[field]), d.rank, shown(field, d.theirs[field]),
      d.ranks_text());
}

}  // namespace

void agree_on_settings(const Communicator& comm) {
  const SettingsReading& reading = read_settings();
  std::optional<Failure> failure;
  if (!reading.error.empty()) failure = Failure{reading.error_kind, reading.error};
  const auto values = encode(reading.values);
  agree_equal(comm, values, describe, ErrorKind::InvalidArgument, failure);
}

}  // namespace ringdp
