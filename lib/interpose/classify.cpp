#include "classify.hpp"

#include <cstdint>
#include <vector>

namespace ringdp::interpose {
namespace {

enum class Kind { Floating, Signed, Unsigned };

struct Candidate {
  MPI_Datatype handle;
  Kind kind;
};

struct Entry {
  MPI_Datatype handle;
  DataType type;
  bool min_max;  // MIN and MAX served too (not only SUM and PROD)
};

// True when MPI orders `type` (an integer of `size` bytes) as a signed two's-complement
// number in MIN and MAX, as ringdp does. Asked of MPI itself with MPI_Reduce_local (local,
// no communication): the standard makes MPI_OFFSET and MPI_LONG signed and
// MPI_UNSIGNED_LONG unsigned, but Open MPI 4.1.4 computes MIN/MAX on MPI_OFFSET as
// unsigned and on MPI_UNSIGNED_LONG as signed. Where MPI differs from ringdp, MIN/MAX
// pass through, so the program gets MPI's answer with or without the interposer.
bool mpi_orders_signed(MPI_Datatype type, int size) {
  auto probe = [&]<class T>(T) {
    T minus_one = -1;
    T one = 1;
    T low = one;
    T high = minus_one;
    if (PMPI_Reduce_local(&minus_one, &low, 1, type, MPI_MIN) != MPI_SUCCESS) return false;
    if (PMPI_Reduce_local(&one, &high, 1, type, MPI_MAX) != MPI_SUCCESS) return false;
    return low == -1 && high == 1;
  };
  return size == 4 ? probe(std::int32_t{}) : probe(std::int64_t{});
}

// Every predefined type that is a plain 4- or 8-byte number. The size of each is asked
// of MPI (MPI_Type_size), never assumed: MPI_LONG is 4 bytes on some platforms and 8 on
// others, and Fortran types exist as handles of size 0 when MPI was built without
// Fortran. A type whose size is neither 4 nor 8 is simply not served. The most common
// types come first, so that the linear search is short for them.
std::vector<Entry> build_table() {
  const Candidate candidates[] = {
      {MPI_FLOAT, Kind::Floating},
      {MPI_DOUBLE, Kind::Floating},
      {MPI_INT, Kind::Signed},
      {MPI_LONG, Kind::Signed},
      {MPI_LONG_LONG, Kind::Signed},
      {MPI_INT32_T, Kind::Signed},
      {MPI_INT64_T, Kind::Signed},
      {MPI_LONG_LONG_INT, Kind::Signed},
      {MPI_AINT, Kind::Signed},
      {MPI_OFFSET, Kind::Signed},
      {MPI_COUNT, Kind::Signed},
      {MPI_UNSIGNED, Kind::Unsigned},
      {MPI_UNSIGNED_LONG, Kind::Unsigned},
      {MPI_UNSIGNED_LONG_LONG, Kind::Unsigned},
      {MPI_UINT32_T, Kind::Unsigned},
      {MPI_UINT64_T, Kind::Unsigned},
      // Fortran types, usable from C; IEEE binary32/64 and two's-complement integers
      // like their C counterparts of the same size.
      {MPI_REAL, Kind::Floating},
      {MPI_DOUBLE_PRECISION, Kind::Floating},
      {MPI_REAL4, Kind::Floating},
      {MPI_REAL8, Kind::Floating},
      {MPI_INTEGER, Kind::Signed},
      {MPI_INTEGER4, Kind::Signed},
      {MPI_INTEGER8, Kind::Signed},
  };
  std::vector<Entry> table;
  for (const Candidate& c : candidates) {
    if (c.handle == MPI_DATATYPE_NULL) continue;
    bool duplicate = false;
    for (const Entry& e : table) duplicate = duplicate || e.handle == c.handle;
    if (duplicate) continue;  // MPI_LONG_LONG_INT is MPI_LONG_LONG in some MPIs
    int size = 0;
    if (PMPI_Type_size(c.handle, &size) != MPI_SUCCESS) continue;
    if (size != 4 && size != 8) continue;
    if (c.kind == Kind::Floating) {
      table.push_back({c.handle, size == 4 ? DataType::Float32 : DataType::Float64, true});
      continue;
    }
    // Integers: wrap-around SUM and PROD give the same bits whether the type is signed or
    // unsigned. MIN and MAX order signed and unsigned differently, so they are served only
    // for signed types that MPI also orders as signed; unsigned ones always pass through.
    const bool min_max = c.kind == Kind::Signed && mpi_orders_signed(c.handle, size);
    table.push_back({c.handle, size == 4 ? DataType::Int32 : DataType::Int64, min_max});
  }
  return table;
}

std::optional<ReduceOp> reduce_op_of(MPI_Op op) noexcept {
  // Handle comparison: a user-defined op is a different handle even if it sums.
  if (op == MPI_SUM) return ReduceOp::Sum;
  if (op == MPI_MAX) return ReduceOp::Max;
  if (op == MPI_MIN) return ReduceOp::Min;
  if (op == MPI_PROD) return ReduceOp::Product;
  return std::nullopt;
}

}  // namespace

std::optional<Served> classify(MPI_Datatype datatype, MPI_Op op) {
  const std::optional<ReduceOp> reduce_op = reduce_op_of(op);
  if (!reduce_op) return std::nullopt;
  static const std::vector<Entry> table = build_table();
  for (const Entry& e : table) {
    if (e.handle != datatype) continue;
    if (!e.min_max && (*reduce_op == ReduceOp::Min || *reduce_op == ReduceOp::Max)) {
      return std::nullopt;
    }
    return Served{e.type, *reduce_op};
  }
  return std::nullopt;
}

}  // namespace ringdp::interpose
