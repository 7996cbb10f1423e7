#pragma once
// Check mode: verify that every rank called a collective with the same arguments.

#include <cstddef>

#include "ringdp/types.hpp"
#include "ringdp/comm/communicator.hpp"

namespace ringdp::detail {

/// What must match across ranks for a collective call. Unused fields stay -1.
struct CallSignature {
  std::size_t count = 0;
  DataType type = DataType::Float32;
  int op = -1;         // ReduceOp, or -1
  int algorithm = -1;  // Algorithm after Auto was resolved, or -1
  int root = -1;       // broadcast root, or -1
};

/// Collective: one small PMPI_Allreduce. When any rank's signature differs, every rank
/// throws the same Error naming the first rank that differs from rank 0, and both calls.
void check_same_call(const Communicator& comm, const char* collective, const CallSignature& mine);

}  // namespace ringdp::detail
