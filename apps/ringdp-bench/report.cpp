#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ringdp/collectives/tuning.hpp"
#include "stats.hpp"

namespace ringdp::bench {
namespace {

constexpr std::size_t kLargeBytes = std::size_t{1} << 20;   // summary: sizes >= 1 MiB
constexpr std::size_t kSmallBytes = std::size_t{64} << 10;  // summary: sizes <= 64 KiB

const Row* mpi_row_at(std::span<const Row> rows, std::size_t bytes) {
  for (const Row& row : rows) {
    if (row.bytes == bytes && row.algorithm == Algorithm::Mpi) return &row;
  }
  return nullptr;
}

std::string optional_number(std::optional<double> value, int decimals) {
  return value ? fmt::format("{:.{}f}", *value, decimals) : std::string();
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(std::optional<double> value, int decimals = 4) {
  if (!value || !std::isfinite(*value)) return "null";
  return fmt::format("{:.{}f}", *value, decimals);
}

// --- the columns, written once for the table, the CSV and the JSON rows ------------------

// One cell: a count, a text, or a measurement (absent: "-" in the table, empty in the CSV,
// null in JSON).
struct Cell {
  enum class Kind { Count, Text, Number } kind = Kind::Count;
  std::uint64_t count = 0;
  std::string text;
  std::optional<double> number;
};

Cell count_cell(std::uint64_t value) { return {Cell::Kind::Count, value, {}, {}}; }
Cell text_cell(std::string value) { return {Cell::Kind::Text, 0, std::move(value), {}}; }
Cell number_cell(std::optional<double> value) { return {Cell::Kind::Number, 0, {}, value}; }

// What a cell is computed from.
struct RowContext {
  const Row& row;
  const Derived& derived;
  const Options& options;
  int ranks;
};

struct Column {
  const char* name;    // table header, CSV header, JSON key
  int width;           // in the table; 0: not in the table
  int table_decimals;  // numbers in the table
  int file_decimals;   // numbers in the CSV and the JSON
  Cell (*value)(const RowContext&);
};

// In this order in all three. The CSV's first ten are what tests/bench/check_bench_csv.py
// and bench/plot.py read.
const Column kColumns[] = {
    {"bytes", 11, 0, 0, [](const RowContext& c) { return count_cell(c.row.bytes); }},
    {"count", 11, 0, 0, [](const RowContext& c) { return count_cell(c.row.count); }},
    {"type", 6, 0, 0, [](const RowContext& c) { return text_cell(to_string(c.options.type)); }},
    {"op", 4, 0, 0, [](const RowContext& c) { return text_cell(to_string(c.options.op)); }},
    {"algo", 4, 0, 0, [](const RowContext& c) { return text_cell(to_string(c.row.algorithm)); }},
    {"time_us", 11, 2, 3, [](const RowContext& c) { return number_cell(c.row.time_us.median); }},
    {"algbw_GBps", 10, 3, 4, [](const RowContext& c) { return number_cell(c.derived.algbw_gbps); }},
    {"busbw_GBps", 10, 3, 4, [](const RowContext& c) { return number_cell(c.derived.busbw_gbps); }},
    {"vs_mpi", 7, 2, 4, [](const RowContext& c) { return number_cell(c.derived.vs_mpi); }},
    {"wrong", 6, 0, 0, [](const RowContext& c) { return count_cell(c.row.wrong); }},
    {"min_us", 11, 2, 3, [](const RowContext& c) { return number_cell(c.row.time_us.min); }},
    {"max_us", 11, 2, 3, [](const RowContext& c) { return number_cell(c.row.time_us.max); }},
    {"iters", 7, 0, 0,
     [](const RowContext& c) { return count_cell(static_cast<std::uint64_t>(c.row.iterations)); }},
    {"runs", 4, 0, 0, [](const RowContext& c) { return text_cell(to_string(c.row.runs)); }},
    {"ranks", 0, 0, 0,
     [](const RowContext& c) { return count_cell(static_cast<std::uint64_t>(c.ranks)); }},
    // The memory floor of the size (traffic.hpp), and this time against it: floor / time,
    // as vs_mpi (1 = at the floor). Absent with --no-floor.
    {"floor_us", 0, 2, 3,
     [](const RowContext& c) {
       return number_cell(c.row.floor_us > 0 ? std::optional<double>(c.row.floor_us) : std::nullopt);
     }},
    {"vs_floor", 8, 2, 4,
     [](const RowContext& c) {
       const double t = c.row.time_us.median;
       return number_cell(c.row.floor_us > 0 && t > 0 ? std::optional<double>(c.row.floor_us / t)
                                                      : std::nullopt);
     }},
    // Bytes the algorithm moves through memory per call, all ranks (traffic.hpp's model).
    {"traffic_bytes", 0, 0, 0,
     [](const RowContext& c) {
       return c.row.traffic_bytes ? count_cell(*c.row.traffic_bytes) : number_cell(std::nullopt);
     }},
};

std::string table_cell(const Column& column, const Cell& cell) {
  switch (cell.kind) {
    case Cell::Kind::Count:
      return fmt::format("{:>{}}", cell.count, column.width);
    case Cell::Kind::Text:
      return fmt::format("{:>{}}", cell.text, column.width);
    case Cell::Kind::Number:
      return cell.number
                 ? fmt::format("{:>{}.{}f}", *cell.number, column.width, column.table_decimals)
                 : fmt::format("{:>{}}", "-", column.width);
  }
  return {};
}

std::string csv_cell(const Column& column, const Cell& cell) {
  switch (cell.kind) {
    case Cell::Kind::Count:
      return std::to_string(cell.count);
    case Cell::Kind::Text:
      return cell.text;
    case Cell::Kind::Number:
      return optional_number(cell.number, column.file_decimals);
  }
  return {};
}

std::string json_cell(const Column& column, const Cell& cell) {
  switch (cell.kind) {
    case Cell::Kind::Count:
      return std::to_string(cell.count);
    case Cell::Kind::Text:
      return json_string(cell.text);
    case Cell::Kind::Number:
      return json_number(cell.number, column.file_decimals);
  }
  return {};
}

// One row as a line of the table (its columns only), the CSV or the JSON (every column):
// `write(column, cell)` gives each cell's text, `separator` goes between two of them.
template <class Write>
std::string row_line(const RowContext& context, bool table, std::string_view separator,
                     Write&& write) {
  std::string line;
  for (const Column& column : kColumns) {
    if (table && column.width == 0) continue;
    if (&column != kColumns) line += separator;
    line += write(column, column.value(context));
  }
  return line;
}

}  // namespace

Derived derive(const Row& row, std::span<const Row> rows, int ranks) {
  Derived d;
  const double seconds = row.time_us.median * 1e-6;
  if (seconds > 0) d.algbw_gbps = static_cast<double>(row.bytes) / seconds / 1e9;
  d.busbw_gbps = d.algbw_gbps * 2.0 * (ranks - 1) / ranks;
  if (const Row* mpi = mpi_row_at(rows, row.bytes); mpi != nullptr && row.time_us.median > 0) {
    d.vs_mpi = mpi->time_us.median / row.time_us.median;
  }
  return d;
}

Summary summarize(std::span<const Row> rows, const Options& options, int ranks) {
  Summary summary;
  for (const Row& row : rows) summary.wrong_total += row.wrong;

  const bool has_mpi = std::find(options.algorithms.begin(), options.algorithms.end(),
                                 Algorithm::Mpi) != options.algorithms.end();
  if (has_mpi) {
    for (const Algorithm algorithm : options.algorithms) {
      std::vector<double> large;
      std::vector<double> small;
      for (const Row& row : rows) {
        if (row.algorithm != algorithm) continue;
        const std::optional<double> vs = derive(row, rows, ranks).vs_mpi;
        if (!vs) continue;
        if (row.bytes >= kLargeBytes) large.push_back(*vs);
        if (row.bytes <= kSmallBytes) small.push_back(*vs);
      }
      AlgorithmSummary s{algorithm, std::nullopt, std::nullopt};
      if (!large.empty()) s.large = geometric_mean(large);
      if (!small.empty()) s.small = geometric_mean(small);
      summary.per_algorithm.push_back(s);
    }
  }

  const bool has_auto = std::find(options.algorithms.begin(), options.algorithms.end(),
                                  Algorithm::Auto) != options.algorithms.end();
  if (has_auto && options.algorithms.size() > 1) {
    AutoCheck check;
    for (const Row& row : rows) {
      if (row.algorithm != Algorithm::Auto) continue;
      double best = std::numeric_limits<double>::infinity();
      Algorithm best_algorithm = Algorithm::Auto;
      for (const Row& other : rows) {
        if (other.bytes == row.bytes && other.algorithm != Algorithm::Auto &&
            other.time_us.median < best) {
          best = other.time_us.median;
          best_algorithm = other.algorithm;
        }
      }
      if (!(best > 0) || !std::isfinite(best)) continue;
      const double ratio = row.time_us.median / best;
      ++check.sizes;
      if (ratio <= kAutoTolerance) ++check.within;
      if (ratio > check.worst_ratio) {
        check.worst_ratio = ratio;
        check.worst_bytes = row.bytes;
        check.worst_best = best_algorithm;
        check.worst_runs = row.runs;
      }
    }
    summary.auto_check = check;
  }
  return summary;
}

std::string table_header(const RunInfo& info, const Options& options) {
  std::string algorithms;
  for (const Algorithm algorithm : options.algorithms) {
    if (!algorithms.empty()) algorithms += ",";
    algorithms += to_string(algorithm);
  }
  std::string out;
  out += fmt::format("# ringdp-bench: allreduce, {} {}, in place, algorithms {}\n",
                     to_string(options.type), to_string(options.op), algorithms);
  out += fmt::format("# {}\n", describe_placement(info));
  out += fmt::format("# ringdp {} ({}), {}; CPU: {}; {}\n", info.ringdp_version, info.git_hash,
                     info.mpi_library, info.cpu_model, info.date_utc);
  out += fmt::format(
      "# sizes {} .. {} x{}; {}; {} interleaved blocks per point, order rotated; "
      "time = median (min, max) over calls of the slowest rank's time\n",
      format_bytes(options.min_bytes), format_bytes(options.max_bytes), options.factor,
      options.iters > 0 ? fmt::format("{} warm-up + {} timed calls", options.warmup, options.iters)
                        : fmt::format("timed calls for ~{} s per point (>= {})",
                                      options.point_seconds, options.min_iters),
      options.repetitions);
  out += fmt::format("# ring segment {}{}; buffers {}{}\n",
                     format_bytes(ring_segment_bytes(info.ranks)),
                     options.segment_bytes > 0 ? " (--segment)" : "",
                     options.shared ? "in a SharedBuffer (--shared)" : "ordinary memory",
                     options.floor ? "; vs_floor = memory floor time / time (bench/README.md)"
                                   : "");
  out +=
      "# algbw = bytes/time, busbw = algbw x 2(n-1)/n (GB/s = 1e9 B/s); vs_mpi = MPI time / "
      "time; wrong = elements != PMPI_Allreduce, summed over ranks\n";
  if (info.ranks == 1) {
    out +=
        "# 1 rank: nothing crosses between ranks, so busbw is 0 by definition; compare "
        "time_us and vs_mpi\n";
  }
  // The column names over the table: '#' in place of the rows' leading space.
  out += '#';
  for (const Column& column : kColumns) {
    if (column.width == 0) continue;
    if (&column != kColumns) out += ' ';
    out += fmt::format("{:>{}}", column.name, column.width);
  }
  out += '\n';
  return out;
}

std::string table_rows(std::span<const Row> rows, const Options& options, int ranks) {
  std::string out;
  for (const Row& row : rows) {
    const Derived d = derive(row, rows, ranks);
    out += ' ';
    out += row_line({row, d, options, ranks}, true, " ", table_cell);
    out += '\n';
  }
  return out;
}

std::string summary_text(const Summary& summary) {
  std::string out;
  if (!summary.per_algorithm.empty()) {
    std::string parts;
    for (const AlgorithmSummary& s : summary.per_algorithm) {
      parts += fmt::format("  {} {} | {}", to_string(s.algorithm),
                           s.large ? fmt::format("{:.2f}", *s.large) : std::string("-"),
                           s.small ? fmt::format("{:.2f}", *s.small) : std::string("-"));
    }
    out += fmt::format("# summary: geomean vs_mpi, sizes >= 1 MiB | <= 64 KiB:{}\n", parts);
  }
  if (summary.auto_check && summary.auto_check->sizes > 0) {
    const AutoCheck& a = *summary.auto_check;
    out += fmt::format(
        "# auto vs best: within {:.0f}% at {} of {} sizes; worst {:.2f}x the best time at {} "
        "(best {}, auto ran {})\n",
        (kAutoTolerance - 1) * 100, a.within, a.sizes, a.worst_ratio, format_bytes(a.worst_bytes),
        to_string(a.worst_best), to_string(a.worst_runs));
  }
  out += summary.wrong_total == 0
             ? "# wrong: 0 (every result equals PMPI_Allreduce's)\n"
             : fmt::format("# wrong: {} elements differ from PMPI_Allreduce: FAILED\n",
                           summary.wrong_total);
  return out;
}

std::string to_csv(std::span<const Row> rows, const Options& options, int ranks) {
  std::string out;
  for (const Column& column : kColumns) {
    if (!out.empty()) out += ',';
    out += column.name;
  }
  out += '\n';
  for (const Row& row : rows) {
    const Derived d = derive(row, rows, ranks);
    out += row_line({row, d, options, ranks}, false, ",", csv_cell);
    out += '\n';
  }
  return out;
}

std::string to_json(const RunInfo& info, const Options& options, std::span<const Row> rows,
                    const Summary& summary, const std::string& command_line) {
  std::string out = "{\n  \"header\": {\n";
  out += fmt::format("    \"ranks\": {},\n", info.ranks);
  out += "    \"hosts\": [";
  for (std::size_t h = 0; h < info.hosts.size(); ++h) {
    out += fmt::format("{}{{\"name\": {}, \"ranks\": {}, \"cpus\": {}}}", h ? ", " : "",
                       json_string(info.hosts[h].name), info.hosts[h].ranks, info.hosts[h].cpus);
  }
  out += "],\n";
  out += fmt::format("    \"oversubscribed\": {},\n", info.oversubscribed ? "true" : "false");
  out += fmt::format("    \"mpi_library\": {},\n", json_string(info.mpi_library));
  out += fmt::format("    \"ringdp_version\": {},\n", json_string(info.ringdp_version));
  out += fmt::format("    \"git_hash\": {},\n", json_string(info.git_hash));
  out += fmt::format("    \"cpu_model\": {},\n", json_string(info.cpu_model));
  out += fmt::format("    \"date_utc\": {},\n", json_string(info.date_utc));
  out += fmt::format("    \"command\": {},\n", json_string(command_line));
  out += fmt::format("    \"dtype\": {},\n", json_string(to_string(options.type)));
  out += fmt::format("    \"op\": {},\n", json_string(to_string(options.op)));
  out += "    \"algos\": [";
  for (std::size_t a = 0; a < options.algorithms.size(); ++a) {
    out += fmt::format("{}{}", a ? ", " : "", json_string(to_string(options.algorithms[a])));
  }
  out += "],\n";
  out += fmt::format(
      "    \"min_bytes\": {}, \"max_bytes\": {}, \"factor\": {}, \"warmup\": {}, \"iters\": {}, "
      "\"reps\": {}, \"point_seconds\": {}, \"min_iters\": {}, \"ring_segment_bytes\": {}, "
      "\"seed\": {}, \"shared\": {}, \"floor\": {}\n  }},\n",
      options.min_bytes, options.max_bytes, options.factor, options.warmup, options.iters,
      options.repetitions, options.point_seconds, options.min_iters, ring_segment_bytes(info.ranks),
      options.seed, options.shared ? "true" : "false", options.floor ? "true" : "false");

  out += "  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    const Derived d = derive(row, rows, info.ranks);
    const std::string fields = row_line(
        {row, d, options, info.ranks}, false, ", ", [](const Column& column, const Cell& cell) {
          return fmt::format("\"{}\": {}", column.name, json_cell(column, cell));
        });
    out += fmt::format("    {{{}}}{}\n", fields, i + 1 < rows.size() ? "," : "");
  }
  out += "  ],\n  \"summary\": {\n    \"geomean_vs_mpi\": {";
  for (std::size_t a = 0; a < summary.per_algorithm.size(); ++a) {
    const AlgorithmSummary& s = summary.per_algorithm[a];
    out += fmt::format("{}{}: {{\"ge_1MiB\": {}, \"le_64KiB\": {}}}", a ? ", " : "",
                       json_string(to_string(s.algorithm)), json_number(s.large),
                       json_number(s.small));
  }
  out += "},\n";
  if (summary.auto_check) {
    const AutoCheck& c = *summary.auto_check;
    out += fmt::format(
        "    \"auto_vs_best\": {{\"tolerance\": {}, \"sizes\": {}, \"within\": {}, "
        "\"worst_ratio\": {}, \"worst_bytes\": {}, \"worst_best\": {}, \"worst_runs\": {}}},\n",
        kAutoTolerance, c.sizes, c.within, json_number(c.worst_ratio), c.worst_bytes,
        json_string(to_string(c.worst_best)), json_string(to_string(c.worst_runs)));
  }
  out += fmt::format("    \"wrong_total\": {}\n  }}\n}}\n", summary.wrong_total);
  return out;
}

}  // namespace ringdp::bench
