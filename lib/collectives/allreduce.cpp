// The public allreduce: check mode, argument checks, then one switch over the algorithm.

#include <fmt/format.h>

#include <cstdint>

#include "algorithms.hpp"
#include "check.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"
#include "comm/wait.hpp"

namespace ringdp {
namespace detail {

template <Reducible T>
void validate_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Min:
    case ReduceOp::Max:
    case ReduceOp::Product:
      return;
    case ReduceOp::Average:
      // average() rejects integers at compile time; the run-time op can only be refused
      // here. Every rank passes the same op (check mode verifies it), so all ranks throw.
      check_op_supports(op, data_type_of<T>);
      return;
  }
  throw InvalidArgument(fmt::format("unknown ReduceOp value {}", static_cast<int>(op)));
}

}  // namespace detail

template <Reducible T>
void allreduce(const Communicator& comm, std::span<T> data, ReduceOp op, Algorithm algorithm) {
  const detail::CollectiveScope scope(comm, "allreduce");
  // The ranks agreed on RINGDP_ALGORITHM and RINGDP_TUNING when the communicator was built
  // (agree_on_settings), so Auto's choice (and the ring's segment size) are the same on
  // every rank.
  const Algorithm chosen =
      resolve_algorithm(algorithm, data.size_bytes(), comm.size(), comm.node_layout());
  if (comm.check_mode()) {
    detail::check_same_call(comm, "allreduce",
                            {.count = data.size(),
                             .type = data_type_of<T>,
                             .op = static_cast<int>(op),
                             .algorithm = static_cast<int>(chosen)});
  }
  detail::validate_op<T>(op);
  switch (chosen) {
    case Algorithm::Ring:
      detail::allreduce_ring(comm, data, op);
      return;
    case Algorithm::RecursiveDoubling:
      detail::allreduce_recursive_doubling(comm, data, op);
      return;
    case Algorithm::Mpi:
      detail::allreduce_mpi(comm, data, op);
      return;
    case Algorithm::ParameterServer:
      detail::allreduce_ps(comm, data, op);
      return;
    case Algorithm::Shm:
      detail::allreduce_shm(comm, data, op);
      return;
    case Algorithm::Hierarchical:
      detail::allreduce_hierarchical(comm, data, op);
      return;
    case Algorithm::Auto:
      break;  // resolve_algorithm never returns Auto
  }
  throw InvalidArgument(fmt::format("unknown Algorithm value {}", static_cast<int>(chosen)));
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce<T>(const Communicator&, std::span<T>, ReduceOp, Algorithm);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace ringdp
