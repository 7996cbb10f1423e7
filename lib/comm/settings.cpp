// The RINGDP_* variables: read once per process, with one rule for malformed values.

#include "ringdp/comm/settings.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "ringdp/comm/environment.hpp"

namespace ringdp {
namespace {

// The value of `name`, or nullptr when unset or empty (both mean "the default").
const char* variable(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

[[noreturn]] void malformed(const char* name, std::string_view value, std::string_view expected) {
  throw InvalidArgument(fmt::format("{}='{}' is not {}", name, value, expected));
}

// An unsigned decimal integer, all of the text, within `max`.
std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

std::size_t read_bytes(const char* name, bool allow_zero, std::size_t fallback) {
  const char* value = variable(name);
  if (value == nullptr) return fallback;
  const auto parsed = parse_unsigned(value, std::numeric_limits<std::size_t>::max());
  if (!parsed || (*parsed == 0 && !allow_zero)) {
    malformed(name, value, allow_zero ? "a byte count (an integer >= 0)"
                                      : "a positive byte count (an integer >= 1)");
  }
  return static_cast<std::size_t>(*parsed);
}

double read_seconds(const char* name, double fallback) {
  const char* value = variable(name);
  if (value == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const double parsed = std::strtod(value, &end);
  if (end == value || *end != '\0' || errno == ERANGE || !std::isfinite(parsed) || parsed < 0.0) {
    malformed(name, value, "a number of seconds >= 0 (0 turns it off)");
  }
  return parsed;
}

bool read_switch(const char* name, bool fallback) {
  const char* value = variable(name);
  if (value == nullptr) return fallback;
  const std::string_view text(value);
  if (text != "0" && text != "1") malformed(name, value, "0 or 1");
  return text == "1";
}

void read_tuning(Settings& s) {
  const char* path = variable("RINGDP_TUNING");
  if (path == nullptr) return;
  s.tuning_file = path;
  // The file's errors name it (and the line); the prefix names the variable.
  try {
    s.tuning = std::make_shared<const TuningTable>(TuningTable::load(path));
  } catch (const Error& e) {
    throw_error(e.kind(), -1, "RINGDP_TUNING: " + e.cause(), false);
  }
}

Settings read_all() {
  Settings s;
  if (const char* value = variable("RINGDP_ALGORITHM")) {
    try {
      s.algorithm = parse_algorithm(value);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("RINGDP_ALGORITHM='{}': {}", value, e.cause()));
    }
    if (*s.algorithm == Algorithm::Auto) s.algorithm.reset();
  }
  s.segment_bytes = read_bytes("RINGDP_SEGMENT_BYTES", false, 0);
  if (const char* value = variable("RINGDP_NODE_SIZE")) {
    const auto parsed = parse_unsigned(value, static_cast<std::uint64_t>(std::numeric_limits<int>::max()));
    if (!parsed || *parsed == 0) malformed("RINGDP_NODE_SIZE", value, "a positive rank count");
    s.node_size = static_cast<int>(*parsed);
  }
  s.check = read_switch("RINGDP_CHECK", false);
  s.bucket_bytes = read_bytes("RINGDP_BUCKET_BYTES", false, 0);
  if (variable("RINGDP_FUSION_BYTES") != nullptr) {
    s.fusion_bytes = read_bytes("RINGDP_FUSION_BYTES", true, 0);
  }
  s.stall_seconds = read_seconds("RINGDP_STALL_SECONDS", s.stall_seconds);
  s.stall_abort_seconds = read_seconds("RINGDP_STALL_ABORT_SECONDS", s.stall_abort_seconds);
  // The test hook is on only with both a rank and a number of seconds.
  const char* stall_rank = variable("RINGDP_TEST_STALL_RANK");
  const char* stall_seconds = variable("RINGDP_TEST_STALL_SECONDS");
  if (stall_rank != nullptr || stall_seconds != nullptr) {
    if (stall_rank == nullptr || stall_seconds == nullptr) {
      throw InvalidArgument(
          "RINGDP_TEST_STALL_RANK and RINGDP_TEST_STALL_SECONDS must be set together");
    }
    const auto rank = parse_unsigned(stall_rank, static_cast<std::uint64_t>(std::numeric_limits<int>::max()));
    if (!rank) malformed("RINGDP_TEST_STALL_RANK", stall_rank, "a rank (an integer >= 0)");
    s.test_stall_rank = static_cast<int>(*rank);
    s.test_stall_seconds = read_seconds("RINGDP_TEST_STALL_SECONDS", 0.0);
    if (const char* step = variable("RINGDP_TEST_STALL_STEP")) {
      std::int64_t parsed = 0;
      const std::string_view text(step);
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
      if (error != std::errc{} || end != text.data() + text.size()) {
        malformed("RINGDP_TEST_STALL_STEP", step, "a step number (an integer)");
      }
      s.test_stall_step = parsed;
    }
  }
  read_tuning(s);
  return s;
}

}  // namespace

const SettingsReading& read_settings() noexcept {
  // Read once (thread-safe static initialisation). The variables are read in a fixed order
  // and the first malformed one is reported; the settings are then all defaults. Only an
  // allocation failure at start-up could escape, and it ends the process (noexcept).
  static const SettingsReading reading = [] {
    SettingsReading r;
    try {
      r.values = read_all();
    } catch (const Error& e) {
      r.values = Settings{};
      r.error_kind = e.kind();
      r.error = e.cause();
    }
    return r;
  }();
  return reading;
}

const Settings& settings() {
  const SettingsReading& r = read_settings();
  if (!r.error.empty()) throw_error(r.error_kind, world_rank(), r.error, false);
  return r.values;
}

const LaunchInfo& launch_info() noexcept {
  static const LaunchInfo info{.open_mpi = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr};
  return info;
}

}  // namespace ringdp
