#pragma once
// The wall-clock time as the applications record it (run headers, checkpoint metadata).
// Shared by the applications only: not part of the library's API.

#include <string>

namespace ringdp::apps {

/// The current UTC time in ISO 8601 to the second, e.g. "2024-05-01T12:34:56Z". Local;
/// thread-safe.
[[nodiscard]] std::string utc_now();

}  // namespace ringdp::apps
