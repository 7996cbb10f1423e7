// The stall inspector's limits: from the environment once, or set by the program.

#include <fmt/format.h>

#include <atomic>
#include <cmath>

#include "ringdp/error.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/comm/stall.hpp"

namespace ringdp {
namespace {

void check_seconds(const char* what, double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) {
    throw InvalidArgument(
        fmt::format("{} must be a number of seconds >= 0, not {}", what, seconds));
  }
}

struct Stored {
  std::atomic<double> report_seconds;
  std::atomic<double> abort_seconds;
};

// From the environment at the first call (ringdp/comm/settings.hpp). A malformed variable
// leaves the defaults here; it is reported when a Communicator is built.
Stored& stored() {
  static Stored settings{read_settings().values.stall_seconds,
                         read_settings().values.stall_abort_seconds};
  return settings;
}

}  // namespace

StallSettings stall_settings() noexcept {
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
