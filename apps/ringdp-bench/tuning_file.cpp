#include "tuning_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

namespace ringdp::bench {
namespace {

struct Rule {
  int ranks;
  std::size_t bytes;
  std::string algorithm;  // empty: a segment rule, `bytes` is the segment size
};

bool is_candidate(Algorithm algorithm) {
  // ps exists to be beaten, auto is what the file configures: neither is a choice.
  return algorithm == Algorithm::Ring || algorithm == Algorithm::RecursiveDoubling ||
         algorithm == Algorithm::Mpi || algorithm == Algorithm::Shm ||
         algorithm == Algorithm::Hierarchical;
}

std::vector<Rule> rules_from_rows(std::span<const Row> rows, int ranks) {
  std::map<std::size_t, std::vector<const Row*>> by_size;
  for (const Row& row : rows) {
    if (is_candidate(row.algorithm)) by_size[row.bytes].push_back(&row);
  }
  std::vector<Rule> rules;
  const Row* current = nullptr;
  for (const auto& [bytes, candidates] : by_size) {
    const Row* best = *std::min_element(
        candidates.begin(), candidates.end(),
        [](const Row* a, const Row* b) { return a->time_us.median < b->time_us.median; });
    // Keep the current algorithm while it stays within the margin of the best here.
    const Row* same = nullptr;
    if (current != nullptr) {
      for (const Row* c : candidates) {
        if (c->algorithm == current->algorithm) same = c;
      }
    }
    if (same != nullptr && same->time_us.median <= best->time_us.median * (1 + kSwitchMargin)) {
      continue;
    }
    rules.push_back({ranks, rules.empty() ? 0 : bytes, to_string(best->algorithm)});
    current = best;
  }
  return rules;
}

}  // namespace

std::string tuning_file(const std::string& existing, std::span<const Row> rows, int ranks,
                        std::size_t segment_bytes, const RunInfo& info,
                        const std::string& measured_with) {
  std::vector<Rule> rules;
  std::istringstream in(existing);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line.substr(0, line.find('#')));
    std::string ranks_word, kind_word;
    Rule rule{};
    if (!(fields >> ranks_word >> rule.ranks >> kind_word >> rule.bytes) || ranks_word != "ranks" ||
        rule.ranks == ranks) {
      continue;
    }
    if (kind_word == "bytes" && fields >> rule.algorithm) rules.push_back(rule);
    if (kind_word == "segment") rules.push_back(rule);
  }
  for (Rule& rule : rules_from_rows(rows, ranks)) rules.push_back(rule);
  if (segment_bytes > 0) rules.push_back({ranks, segment_bytes, ""});
  // Per rank count: the size rules in order, then the segment rule.
  std::stable_sort(rules.begin(), rules.end(), [](const Rule& a, const Rule& b) {
    if (a.ranks != b.ranks) return a.ranks < b.ranks;
    if (a.algorithm.empty() != b.algorithm.empty()) return b.algorithm.empty();
    return a.bytes < b.bytes;
  });

  std::string out;
  out += "# ringdp tuning file, written by ringdp-bench --tune; read through RINGDP_TUNING.\n";
  out += "# Rule: ranks <n> bytes <min-bytes> <algorithm>: at n ranks, messages of at least\n";
  out += "# min-bytes bytes use the algorithm, up to the next rule of the same n;\n";
  out += "# ranks <n> segment <bytes>: the ring's segment size at n ranks.\n";
  out +=
      fmt::format("# last update: ranks {} measured {} on {} ({}), {}, ringdp {} ({}): {}\n", ranks,
                  info.date_utc, info.hosts.empty() ? "?" : info.hosts.front().name, info.cpu_model,
                  info.mpi_library, info.ringdp_version, info.git_hash, measured_with);
  for (const Rule& rule : rules) {
    if (rule.algorithm.empty()) {
      out += fmt::format("ranks {} segment {}\n", rule.ranks, rule.bytes);
    } else {
      out += fmt::format("ranks {} bytes {} {}\n", rule.ranks, rule.bytes, rule.algorithm);
    }
  }
  return out;
}

}  // namespace ringdp::bench
