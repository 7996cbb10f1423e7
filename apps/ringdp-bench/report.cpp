#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

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
  out += fmt::format("# ring segment {}{}\n", format_bytes(ring_segment_bytes(info.ranks)),
                     options.segment_bytes > 0 ? " (--segment)" : "");
  out +=
      "# algbw = bytes/time, busbw = algbw x 2(n-1)/n (GB/s = 1e9 B/s); vs_mpi = MPI time / "
      "time; wrong = elements != PMPI_Allreduce, summed over ranks\n";
  if (info.ranks == 1) {
    out +=
        "# 1 rank: nothing crosses between ranks, so busbw is 0 by definition; compare "
        "time_us and vs_mpi\n";
  }
  out += fmt::format(
      "#{:>11} {:>11} {:>6} {:>4} {:>4} {:>11} {:>10} {:>10} {:>7} {:>6} {:>11} "
      "{:>11} {:>7} {:>4}\n",
      "bytes", "count", "type", "op", "algo", "time_us", "algbw_GBps", "busbw_GBps", "vs_mpi",
      "wrong", "min_us", "max_us", "iters", "runs");
  return out;
}

std::string table_rows(std::span<const Row> rows, const Options& options, int ranks) {
  std::string out;
  for (const Row& row : rows) {
    const Derived d = derive(row, rows, ranks);
    out += fmt::format(
        " {:>11} {:>11} {:>6} {:>4} {:>4} {:>11.2f} {:>10.3f} {:>10.3f} {:>7} {:>6} {:>11.2f} "
        "{:>11.2f} {:>7} {:>4}\n",
        row.bytes, row.count, to_string(options.type), to_string(options.op),
        to_string(row.algorithm), row.time_us.median, d.algbw_gbps, d.busbw_gbps,
        d.vs_mpi ? fmt::format("{:.2f}", *d.vs_mpi) : std::string("-"), row.wrong, row.time_us.min,
        row.time_us.max, row.iterations, to_string(row.runs));
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
  std::string out =
      "bytes,count,type,op,algo,time_us,algbw_GBps,busbw_GBps,vs_mpi,wrong,min_us,max_us,iters,"
      "runs,ranks\n";
  for (const Row& row : rows) {
    const Derived d = derive(row, rows, ranks);
    out += fmt::format("{},{},{},{},{},{:.3f},{:.4f},{:.4f},{},{},{:.3f},{:.3f},{},{},{}\n",
                       row.bytes, row.count, to_string(options.type), to_string(options.op),
                       to_string(row.algorithm), row.time_us.median, d.algbw_gbps, d.busbw_gbps,
                       optional_number(d.vs_mpi, 4), row.wrong, row.time_us.min, row.time_us.max,
                       row.iterations, to_string(row.runs), ranks);
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
      "\"seed\": {}\n  }},\n",
      options.min_bytes, options.max_bytes, options.factor, options.warmup, options.iters,
      options.repetitions, options.point_seconds, options.min_iters, ring_segment_bytes(info.ranks),
      options.seed);

  out += "  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    const Derived d = derive(row, rows, info.ranks);
    out += fmt::format(
        "    {{\"bytes\": {}, \"count\": {}, \"algo\": {}, \"runs\": {}, \"time_us\": {}, "
        "\"min_us\": {}, \"max_us\": {}, \"iters\": {}, \"algbw_GBps\": {}, \"busbw_GBps\": {}, "
        "\"vs_mpi\": {}, \"wrong\": {}}}{}\n",
        row.bytes, row.count, json_string(to_string(row.algorithm)),
        json_string(to_string(row.runs)), json_number(row.time_us.median, 3),
        json_number(row.time_us.min, 3), json_number(row.time_us.max, 3), row.iterations,
        json_number(d.algbw_gbps), json_number(d.busbw_gbps), json_number(d.vs_mpi), row.wrong,
        i + 1 < rows.size() ? "," : "");
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
