#pragma once
/// \file
/// Parsing of MLP spec strings such as "784-512-256-10".

#include <cstddef>
#include <string_view>
#include <vector>

namespace ringdp::nn {

/// Largest width a spec may name (guards against typos that would allocate gigabytes).
inline constexpr std::size_t kMaxSpecWidth = 1u << 20;

/// Parses "784-512-256-10" into {784, 512, 256, 10}: at least two positive decimal widths
/// (input and output), separated by single '-', no spaces or signs, each at most
/// kMaxSpecWidth. Throws InvalidArgument naming the spec and what is wrong. Local, no MPI.
[[nodiscard]] std::vector<std::size_t> parse_model_spec(std::string_view spec);

}  // namespace ringdp::nn
