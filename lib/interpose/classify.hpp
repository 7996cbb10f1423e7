#pragma once
// Which MPI_Allreduce calls ringdp can serve, by datatype and operation.

#include <mpi.h>

#include <optional>

#include "ringdp/types.hpp"

namespace ringdp::interpose {

/// A call ringdp serves: the element type and operation it runs.
struct Served {
  DataType type;
  ReduceOp op;
};

/// What ringdp runs for (`datatype`, `op`), or nullopt when the call must go to MPI.
/// Served: MPI_SUM, MPI_PROD, MPI_MIN, MPI_MAX (the predefined handles only) on predefined
/// floating and signed integer types whose MPI_Type_size is 4 or 8 bytes, and MPI_SUM and
/// MPI_PROD on unsigned integer types of 4 or 8 bytes (wrap-around addition and
/// multiplication give the same bits in the signed type; MIN and MAX would not). MIN and
/// MAX on a signed type are served only when MPI itself orders it as signed (probed with
/// MPI_Reduce_local), so that a program gets the same answer with or without ringdp.
/// Call after MPI_Init. Thread-safe; the table is built on first use (std::bad_alloc
/// is the only exception possible).
[[nodiscard]] std::optional<Served> classify(MPI_Datatype datatype, MPI_Op op);

}  // namespace ringdp::interpose
