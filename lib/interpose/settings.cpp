#include "settings.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace ringdp::interpose {
namespace {

// Default threshold (kDefaultMinBytes, 16 KiB). Measured at 2 ranks with
// tests/interpose/timing.c under the preload: batches of MPI_Allreduce (served) and
// PMPI_Allreduce (MPI) alternate in one process, float sum, separate buffers, 64 B .. 1 MiB,
// seven runs (the table and command are in lib/interpose/README.md). The machine was
// shared (load 13-14 on 2 cores), so single points are noisy; the medians over runs show
// the served path slower up to 256 B (x1.4-1.5: the fixed cost of the checks, the
// attribute lookup and the copy is about 0.1 us, a large share of a 1 us call), even with
// MPI from 512 B to 8 KiB (0.87-1.04), and ahead from 16 KiB (0.60 at 16 KiB, 0.82 at
// 32 KiB), where ringdp's Auto runs recursive doubling, measured ahead of MPI_Allreduce
// from 16 KiB in the collectives' own runs (lib/collectives/select.cpp).

const char* variable(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// Reads a 0/1 switch; returns false and sets `error` on any other value.
bool parse_switch(const char* name, bool fallback, bool& out, std::string& error) {
  const char* value = variable(name);
  if (value == nullptr) {
    out = fallback;
    return true;
  }
  const std::string_view text(value);
  if (text == "0" || text == "1") {
    out = text == "1";
    return true;
  }
  error = std::string(name) + "='" + value + "' is not 0 or 1";
  return false;
}

bool parse_bytes(const char* name, std::size_t fallback, std::size_t& out, std::string& error) {
  const char* value = variable(name);
  if (value == nullptr) {
    out = fallback;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long parsed = std::strtoull(value, &end, 10);
  if (end == value || *end != '\0' || errno == ERANGE || value[0] == '-') {
    error = std::string(name) + "='" + value + "' is not a byte count (a non-negative integer)";
    return false;
  }
  out = static_cast<std::size_t>(parsed);
  return true;
}

Settings read_settings() {
  Settings s;
  // The first bad variable is the one reported.
  if (parse_switch("RINGDP_INTERPOSE", true, s.enabled, s.error) &&
      parse_bytes("RINGDP_INTERPOSE_MIN_BYTES", kDefaultMinBytes, s.min_bytes, s.error)) {
    parse_switch("RINGDP_INTERPOSE_VERBOSE", false, s.verbose, s.error);
  }
  if (const char* path = variable("RINGDP_INTERPOSE_STATS")) s.stats_path = path;
  return s;
}

}  // namespace

const Settings& settings() noexcept {
  // Built once; a std::string copy could throw only on allocation failure at start-up.
  static const Settings parsed = read_settings();
  return parsed;
}

}  // namespace ringdp::interpose
