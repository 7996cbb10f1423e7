#include "ringdp/types.hpp"

#include <fmt/format.h>

#include <string>

#include "ringdp/error.hpp"

namespace ringdp {

const char* to_string(ReduceOp op) noexcept {
  switch (op) {
    case ReduceOp::Sum:
      return "sum";
    case ReduceOp::Average:
      return "avg";
    case ReduceOp::Min:
      return "min";
    case ReduceOp::Max:
      return "max";
    case ReduceOp::Product:
      return "prod";
  }
  return "unknown-op";
}

const char* to_string(Algorithm algorithm) noexcept {
  switch (algorithm) {
    case Algorithm::Auto:
      return "auto";
    case Algorithm::Ring:
      return "ring";
    case Algorithm::RecursiveDoubling:
      return "rd";
    case Algorithm::Mpi:
      return "mpi";
    case Algorithm::ParameterServer:
      return "ps";
    case Algorithm::Shm:
      return "shm";
    case Algorithm::Hierarchical:
      return "hier";
  }
  return "unknown-algorithm";
}

const char* to_string(DataType type) noexcept {
  switch (type) {
    case DataType::Float32:
      return "float";
    case DataType::Float64:
      return "double";
    case DataType::Int32:
      return "int32";
    case DataType::Int64:
      return "int64";
  }
  return "unknown-type";
}

std::size_t size_of(DataType type) noexcept {
  switch (type) {
    case DataType::Float32:
    case DataType::Int32:
      return 4;
    case DataType::Float64:
    case DataType::Int64:
      return 8;
  }
  return 0;
}

void check_op_supports(ReduceOp op, DataType type) {
  if (op == ReduceOp::Average && (type == DataType::Int32 || type == DataType::Int64)) {
    throw InvalidArgument(fmt::format(
        "ReduceOp::Average needs a floating-point type, got {} (use Sum and divide)",
        to_string(type)));
  }
}

ReduceOp parse_reduce_op(std::string_view name) {
  if (name == "sum") return ReduceOp::Sum;
  if (name == "avg" || name == "average") return ReduceOp::Average;
  if (name == "min") return ReduceOp::Min;
  if (name == "max") return ReduceOp::Max;
  if (name == "prod" || name == "product") return ReduceOp::Product;
  throw InvalidArgument(
      fmt::format("unknown reduction '{}' (expected sum, avg, min, max or prod)", name));
}

Algorithm parse_algorithm(std::string_view name) {
  if (name == "auto") return Algorithm::Auto;
  if (name == "ring") return Algorithm::Ring;
  if (name == "rd" || name == "recursive-doubling") return Algorithm::RecursiveDoubling;
  if (name == "mpi") return Algorithm::Mpi;
  if (name == "ps" || name == "parameter-server") return Algorithm::ParameterServer;
  if (name == "shm") return Algorithm::Shm;
  if (name == "hier" || name == "hierarchical") return Algorithm::Hierarchical;
  throw InvalidArgument(fmt::format(
      "unknown allreduce algorithm '{}' (expected auto, ring, rd, mpi, ps, shm or hier)", name));
}

DataType parse_data_type(std::string_view name) {
  if (name == "float" || name == "float32") return DataType::Float32;
  if (name == "double" || name == "float64") return DataType::Float64;
  if (name == "int32") return DataType::Int32;
  if (name == "int64") return DataType::Int64;
  throw InvalidArgument(
      fmt::format("unknown data type '{}' (expected float, double, int32 or int64)", name));
}

}  // namespace ringdp
