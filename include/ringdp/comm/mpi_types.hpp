#pragma once
/// \file
/// The one mapping from ringdp's element types and reductions to MPI's handles, for the
/// library and for code that checks it against MPI (tests, benchmarks).

#include <mpi.h>

#include <type_traits>

#include "ringdp/types.hpp"

namespace ringdp {

/// The MPI datatype of a Reducible element type: MPI_FLOAT, MPI_DOUBLE, MPI_INT32_T,
/// MPI_INT64_T.
template <Reducible T>
[[nodiscard]] MPI_Datatype mpi_datatype() noexcept {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
  if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
}

/// The MPI datatype of a DataType. Throws InvalidArgument for a value outside the enum.
[[nodiscard]] MPI_Datatype mpi_datatype(DataType type);

/// The MPI operation of a ReduceOp: Average maps to MPI_SUM (the caller divides by the
/// rank count). Throws InvalidArgument for a value outside the enum.
[[nodiscard]] MPI_Op mpi_op(ReduceOp op);

}  // namespace ringdp
