#include "check.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ringdp/comm/error.hpp"
#include "ringdp/detail/mpi_check.hpp"
#include "ringdp/detail/wait.hpp"

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
  // One reduction answers "is every field equal on all ranks?": each rank contributes
  // its fields and their negations, MPI_MIN yields the minimum and minus the maximum of
  // each field, and a field is the same everywhere exactly when min == max.
  const auto fields = encode(mine);
  std::array<std::int64_t, 2 * kFields> in{};
  std::array<std::int64_t, 2 * kFields> out{};
  for (int i = 0; i < kFields; ++i) {
    in[i] = fields[i];
    in[kFields + i] = -fields[i];
  }
  // Non-blocking and the library's wait: a rank that never makes the call is exactly what
  // check mode users hunt for, and the stall inspector names it.
  MPI_Request request = MPI_REQUEST_NULL;
  RINGDP_MPI_CHECK(PMPI_Iallreduce(in.data(), out.data(), 2 * kFields, MPI_INT64_T, MPI_MIN,
                                   comm.native(), &request));
  wait(comm, request);
  bool same = true;
  for (int i = 0; i < kFields; ++i) same = same && out[i] == -out[kFields + i];
  if (same) return;

  // Slow path, taken only on error: gather every rank's call so that all ranks name the
  // same culprit (the first rank whose call differs from rank 0's) in the same words.
  std::vector<std::int64_t> all(static_cast<std::size_t>(kFields) * comm.size());
  RINGDP_MPI_CHECK(MPI_Iallgather(fields.data(), kFields, MPI_INT64_T, all.data(), kFields,
                                  MPI_INT64_T, comm.native(), &request));
  wait(comm, request);
  std::array<std::int64_t, kFields> first{};
  std::copy_n(all.begin(), kFields, first.begin());
  int culprit = 0;
  std::array<std::int64_t, kFields> theirs{};
  for (int r = 1; r < comm.size(); ++r) {
    std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(r) * kFields, kFields, theirs.begin());
    if (theirs != first) {
      culprit = r;
      break;
    }
  }
  throw Error(culprit,
              fmt::format("check mode: {} called with different arguments: rank {} passed {}, "
                          "but rank 0 passed {}",
                          collective, culprit, describe(theirs), describe(first)),
              /*collective=*/true);
}

}  // namespace ringdp::detail
