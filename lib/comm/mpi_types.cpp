#include "ringdp/comm/mpi_types.hpp"

#include <atomic>
#include <climits>
#include <string>

#include "ringdp/comm/mpi_types.hpp"
#include "ringdp/error.hpp"
#include "ringdp/testing.hpp"

namespace ringdp {
namespace {

std::atomic<std::size_t> max_count{static_cast<std::size_t>(INT_MAX)};

}  // namespace

namespace testing {

void set_max_mpi_count(std::size_t count) noexcept {
  max_count.store(count == 0 || count > static_cast<std::size_t>(INT_MAX)
                      ? static_cast<std::size_t>(INT_MAX)
                      : count,
                  std::memory_order_relaxed);
}

std::size_t max_mpi_count() noexcept { return max_count.load(std::memory_order_relaxed); }

}  // namespace testing

MPI_Datatype mpi_datatype(DataType type) {
  switch (type) {
    case DataType::Float32: return MPI_FLOAT;
    case DataType::Float64: return MPI_DOUBLE;
    case DataType::Int32: return MPI_INT32_T;
    case DataType::Int64: return MPI_INT64_T;
  }
  throw InvalidArgument("unknown DataType value " + std::to_string(static_cast<int>(type)));
}

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

}  // namespace ringdp
