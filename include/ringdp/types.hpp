#pragma once
/// \file
/// The vocabulary of the collectives: reduction operations, allreduce algorithms, the
/// element types ringdp reduces, and their names for flags and environment variables.

#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace ringdp {

/// How allreduce and reduce_scatter combine the ranks' elements.
/// `Average` is Sum divided by the rank count, for floating-point types only.
enum class ReduceOp { Sum, Average, Min, Max, Product };

/// Which allreduce algorithm to run. `Auto` picks by message size, rank count and how the
/// ranks share nodes (see select_algorithm()), unless the environment variable
/// RINGDP_ALGORITHM names another. `Shm` reduces through memory shared by the ranks of one
/// node (all ranks must share one node); `Hierarchical` runs shm inside each node and a ring
/// between nodes.
enum class Algorithm { Auto, Ring, RecursiveDoubling, Mpi, ParameterServer, Shm, Hierarchical };

/// The element types the collectives are instantiated for.
enum class DataType { Float32, Float64, Int32, Int64 };

/// True for the element types ringdp's collectives accept: float, double, int32_t, int64_t.
template <class T>
concept Reducible = std::same_as<T, float> || std::same_as<T, double> ||
    std::same_as<T, std::int32_t> || std::same_as<T, std::int64_t>;

/// The DataType of a Reducible element type.
template <Reducible T>
inline constexpr DataType data_type_of = std::is_same_v<T, float>          ? DataType::Float32
                                         : std::is_same_v<T, double>       ? DataType::Float64
                                         : std::is_same_v<T, std::int32_t> ? DataType::Int32
                                                                           : DataType::Int64;

/// Names: "sum", "avg", "min", "max", "prod".
[[nodiscard]] const char* to_string(ReduceOp op) noexcept;
/// Names: "auto", "ring", "rd", "mpi", "ps", "shm", "hier".
[[nodiscard]] const char* to_string(Algorithm algorithm) noexcept;
/// Names: "float", "double", "int32", "int64".
[[nodiscard]] const char* to_string(DataType type) noexcept;
/// Size of one element in bytes.
[[nodiscard]] std::size_t size_of(DataType type) noexcept;

/// Throws InvalidArgument when `op` cannot reduce elements of `type`: Average needs a
/// floating-point type. The one statement of the rule, for the collectives and for
/// bindings that check their arguments before communicating.
void check_op_supports(ReduceOp op, DataType type);

/// Parses "sum", "avg"/"average", "min", "max", "prod"/"product" (case-sensitive).
/// Throws InvalidArgument naming the accepted values otherwise.
[[nodiscard]] ReduceOp parse_reduce_op(std::string_view name);
/// Parses "auto", "ring", "rd"/"recursive-doubling", "mpi", "ps"/"parameter-server", "shm",
/// "hier"/"hierarchical".
/// Throws InvalidArgument naming the accepted values otherwise.
[[nodiscard]] Algorithm parse_algorithm(std::string_view name);
/// Parses "float"/"float32", "double"/"float64", "int32", "int64".
[[nodiscard]] DataType parse_data_type(std::string_view name);

}  // namespace ringdp
