#include "sizes.hpp"

#include <limits>

namespace ringdp::bench {

std::vector<std::size_t> message_counts(std::size_t min_bytes, std::size_t max_bytes,
                                        std::size_t factor, std::size_t element_bytes) {
  std::vector<std::size_t> counts;
  for (std::size_t bytes = min_bytes; bytes <= max_bytes;) {
    const std::size_t count = bytes / element_bytes;
    if (count > 0 && (counts.empty() || counts.back() != count)) counts.push_back(count);
    if (bytes > std::numeric_limits<std::size_t>::max() / factor) break;
    bytes *= factor;
  }
  return counts;
}

}  // namespace ringdp::bench
