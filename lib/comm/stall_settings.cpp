// The stall inspector's limits: from the environment once, or set by the program.

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstdlib>

#include "ringdp/comm/error.hpp"
#include "ringdp/comm/stall.hpp"

namespace ringdp {
namespace {

void check_seconds(const char* what, double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) {
    throw InvalidArgument(
        fmt::format("{} must be a number of seconds >= 0, not {}", what, seconds));
  }
}

double seconds_from_environment(const char* name, double fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const double parsed = std::strtod(value, &end);
  if (end == value || *end != '\0' || !std::isfinite(parsed) || parsed < 0.0) {
    throw InvalidArgument(
        fmt::format("{}='{}' is not a number of seconds >= 0 (0 turns it off)", name, value));
  }
  return parsed;
}

struct Stored {
  std::atomic<double> report_seconds;
  std::atomic<double> abort_seconds;
};

// Read at the first call. A malformed variable throws, and the next call tries again, so
// every Communicator constructor reports it.
Stored& stored() {
  static Stored settings{
      seconds_from_environment("RINGDP_STALL_SECONDS", StallSettings{}.report_seconds),
      seconds_from_environment("RINGDP_STALL_ABORT_SECONDS", StallSettings{}.abort_seconds)};
  return settings;
}

}  // namespace

StallSettings stall_settings() {
  const Stored& s = stored();
  return {.report_seconds = s.report_seconds.load(std::memory_order_relaxed),
          .abort_seconds = s.abort_seconds.load(std::memory_order_relaxed)};
}

void set_stall_settings(const StallSettings& settings) {
  check_seconds("StallSettings::report_seconds", settings.report_seconds);
  check_seconds("StallSettings::abort_seconds", settings.abort_seconds);
  Stored& s = stored();
  s.report_seconds.store(settings.report_seconds, std::memory_order_relaxed);
  s.abort_seconds.store(settings.abort_seconds, std::memory_order_relaxed);
}

}  // namespace ringdp
