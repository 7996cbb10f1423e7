#include "check.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "ringdp/error.hpp"
#include "ringdp/comm/agreement.hpp"

namespace ringdp::detail {
namespace {

constexpr int kFields = 5;

std::array<std::int64_t, kFields> encode(const CallSignature& s) {
  return {static_cast<std::int64_t>(s.count), static_cast<std::int64_t>(s.type), s.op, s.algorithm,
          s.root};
}

std::string describe(const std::array<std::int64_t, kFields>& f) {
  std::string text = fmt::format("count {}, type {}", f[0], to_string(static_cast<DataType>(f[1])));
  if (f[2] >= 0) text += fmt::format(", op {}", to_string(static_cast<ReduceOp>(f[2])));
  if (f[3] >= 0) text += fmt::format(", algorithm {}", to_string(static_cast<Algorithm>(f[3])));
  if (f[4] >= 0) text += fmt::format(", root {}", f[4]);
  return text;
}

}  // namespace

void check_same_call(const Communicator& comm, const char* collective, const CallSignature& mine) {
  // agree_equal: one small reduction when every rank passed the same call; otherwise every
  // rank names the same culprit (the first rank whose call differs from rank 0's) in the
  // same words. A rank that never makes the call is what check mode users hunt for: the
  // agreement's waits are watched, and the stall inspector names it.
  const auto fields = encode(mine);
  agree_equal(
      comm, fields,
      [&](const Disagreement& d) {
        std::array<std::int64_t, kFields> first{};
        std::array<std::int64_t, kFields> theirs{};
        std::copy_n(d.reference.begin(), kFields, first.begin());
        std::copy_n(d.theirs.begin(), kFields, theirs.begin());
        return fmt::format(
            "check mode: {} called with different arguments: rank {} passed {}, but rank 0 "
            "passed {}",
            collective, d.rank, describe(theirs), describe(first));
      },
      ErrorKind::Mismatch);
}

}  // namespace ringdp::detail
