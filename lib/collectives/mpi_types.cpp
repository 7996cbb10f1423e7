#include "mpi_types.hpp"

#include <atomic>
#include <climits>
#include <string>

#include "ringdp/comm/error.hpp"

namespace ringdp::detail {
namespace {

std::atomic<std::size_t> max_count{static_cast<std::size_t>(INT_MAX)};

}  // namespace

void set_max_mpi_count(std::size_t count) noexcept {
  max_count.store(count == 0 || count > static_cast<std::size_t>(INT_MAX)
                      ? static_cast<std::size_t>(INT_MAX)
                      : count,
                  std::memory_order_relaxed);
}

std::size_t max_mpi_count() noexcept { return max_count.load(std::memory_order_relaxed); }

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Average:
      return MPI_SUM;
    case ReduceOp::Min:
      return MPI_MIN;
    case ReduceOp::Max:
      return MPI_MAX;
    case ReduceOp::Product:
      return MPI_PROD;
  }
  throw InvalidArgument("unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

}  // namespace ringdp::detail
