// Parsing and lookup of tuning files (format in tuning_table.hpp).

#include "ringdp/comm/tuning_table.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "ringdp/error.hpp"

namespace ringdp {
namespace {

// A tuning file is a few hundred bytes; anything far larger is not one (and a path such
// as /dev/zero must not be read forever).
constexpr std::size_t kMaxFileBytes = std::size_t{1} << 20;

constexpr const char* kExpected =
    "expected 'ranks <n> bytes <min-bytes> <algorithm>' or 'ranks <n> segment <bytes>'";

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// The line as it can be shown in a message: at most 60 characters, unprintable ones as '?'.
std::string printable(std::string_view line) {
  std::string out;
  for (const char c : line.substr(0, 60)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (line.size() > 60) out += "...";
  return out;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view word) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (error != std::errc() || end != word.data() + word.size()) return std::nullopt;
  return value;
}

}  // namespace

TuningTable TuningTable::parse(std::string_view text, const std::string& source) {
  TuningTable table;
  table.source_ = source;
  table.hash_ = fnv1a(text);
  std::map<std::pair<int, std::size_t>, int> rule_line;  // (ranks, bytes) -> line number
  std::map<int, int> segment_line;                       // ranks -> line number

  int number = 0;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t newline = std::min(text.find('\n', begin), text.size());
    const std::string_view line = text.substr(begin, newline - begin);
    begin = newline + 1;
    ++number;
    const auto fail = [&](const std::string& what) {
      return InvalidArgument(
          fmt::format("{}:{}: {} in '{}'; {}", source, number, what, printable(line), kExpected));
    };

    const std::vector<std::string_view> words = split_words(line.substr(0, line.find('#')));
    if (words.empty()) continue;
    if (words[0] != "ranks" || words.size() < 4) throw fail("not a rule");
    const auto ranks = parse_unsigned(words[1]);
    if (!ranks || *ranks < 1 || *ranks > static_cast<std::uint64_t>(INT_MAX)) {
      throw fail(fmt::format("rank count '{}' is not an integer >= 1", printable(words[1])));
    }
    const int n = static_cast<int>(*ranks);
    const auto bytes = parse_unsigned(words[3]);
    if (!bytes) {
      throw fail(
          fmt::format("'{}' is not a byte count (a non-negative integer)", printable(words[3])));
    }

    if (words[2] == "bytes") {
      if (words.size() != 5) throw fail("a 'bytes' rule needs exactly 5 words");
      Algorithm algorithm = Algorithm::Auto;
      try {
        algorithm = parse_algorithm(words[4]);
      } catch (const Error& e) {
        throw fail(e.cause());
      }
      if (algorithm == Algorithm::Auto) {
        throw fail("'auto' is what the file configures; name ring, rd, mpi or ps");
      }
      const auto [it, fresh] = rule_line.emplace(std::pair{n, *bytes}, number);
      if (!fresh) {
        throw fail(fmt::format("a second rule for ranks {} bytes {} (the first is on line {})", n,
                               *bytes, it->second));
      }
      table.rules_[n][static_cast<std::size_t>(*bytes)] = algorithm;
    } else if (words[2] == "segment") {
      if (words.size() != 4) throw fail("a 'segment' rule needs exactly 4 words");
      if (*bytes == 0) throw fail("a segment of 0 bytes");
      const auto [it, fresh] = segment_line.emplace(n, number);
      if (!fresh) {
        throw fail(fmt::format("a second segment rule for ranks {} (the first is on line {})", n,
                               it->second));
      }
      table.segments_[n] = static_cast<std::size_t>(*bytes);
    } else {
      throw fail(fmt::format("unknown rule kind '{}'", printable(words[2])));
    }
  }
  return table;
}

TuningTable TuningTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError(fmt::format("cannot read tuning file {}: {}", path, std::strerror(errno)));
  }
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      throw InvalidArgument(fmt::format("tuning file {} is larger than {} bytes: not a tuning file",
                                        path, kMaxFileBytes));
    }
  }
  if (in.bad()) throw IoError(fmt::format("error while reading tuning file {}", path));
  return parse(text, path);
}

std::optional<Algorithm> TuningTable::algorithm(std::size_t bytes, int ranks) const {
  const auto of_ranks = rules_.find(ranks);
  if (of_ranks == rules_.end() || of_ranks->second.empty()) return std::nullopt;
  const auto& rules = of_ranks->second;
  // The last rule starting at or below `bytes`; below the first rule, the first rule.
  auto it = rules.upper_bound(bytes);
  if (it != rules.begin()) --it;
  return it->second;
}

std::optional<std::size_t> TuningTable::segment_bytes(int ranks) const {
  const auto it = segments_.find(ranks);
  if (it == segments_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ringdp
