#include "common/utc_time.hpp"

#include <ctime>

namespace ringdp::apps {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);  // not std::gmtime: its static result would race between threads
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace ringdp::apps
