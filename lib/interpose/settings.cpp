#include "settings.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace ringdp::interpose {
namespace {

// Default threshold: the smallest message size from which the interposed MPI_Allreduce
// (ringdp, Auto) is not slower than Open MPI's own, at 2 ranks on the development
// machine. Measured with tests/interpose/timing.c, the same binary run in one
// job with RINGDP_INTERPOSE=0 and =1 interleaved (see lib/interpose/README.md for the
// command and the table). Below 64 KiB ringdp's Auto itself runs MPI_Allreduce, so
// serving would only add the copy and the attribute lookup.

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
