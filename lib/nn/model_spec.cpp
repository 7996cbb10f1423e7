#include "ringdp/nn/model_spec.hpp"

#include <fmt/format.h>

#include <string>

#include "ringdp/error.hpp"

namespace ringdp::nn {

std::vector<std::size_t> parse_model_spec(std::string_view spec) {
  const auto fail = [&](const std::string& why) {
    return InvalidArgument(fmt::format(
        "invalid model spec \"{}\": {} (expected widths joined by '-', e.g. 784-512-256-10)", spec,
        why));
  };
  std::vector<std::size_t> widths;
  std::size_t pos = 0;
  while (true) {
    const std::size_t dash = spec.find('-', pos);
    const std::string_view field =
        spec.substr(pos, dash == std::string_view::npos ? std::string_view::npos : dash - pos);
    if (field.empty()) throw fail(fmt::format("empty width at position {}", pos));
    std::size_t value = 0;
    for (const char c : field) {
      if (c < '0' || c > '9') throw fail(fmt::format("'{}' is not a positive integer", field));
      value = value * 10 + static_cast<std::size_t>(c - '0');
      // Checked digit by digit, so long strings of digits cannot overflow.
      if (value > kMaxSpecWidth) {
        throw fail(fmt::format("width {} exceeds the limit {}", field, kMaxSpecWidth));
      }
    }
    if (value == 0) throw fail("widths must be positive");
    widths.push_back(value);
    if (dash == std::string_view::npos) break;
    pos = dash + 1;
  }
  if (widths.size() < 2) throw fail("need at least an input and an output width");
  return widths;
}

}  // namespace ringdp::nn
