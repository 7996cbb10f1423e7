#pragma once
// The message sizes a run walks through.

#include <cstddef>
#include <vector>

namespace ringdp::bench {

/// Element counts for the sizes min_bytes, min_bytes x factor, ... up to max_bytes, each
/// rounded down to whole elements of `element_bytes`. Sizes below one element are
/// skipped and repeated counts dropped, so the list is strictly increasing.
std::vector<std::size_t> message_counts(std::size_t min_bytes, std::size_t max_bytes,
                                        std::size_t factor, std::size_t element_bytes);

}  // namespace ringdp::bench
