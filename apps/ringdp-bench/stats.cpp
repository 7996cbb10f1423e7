#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ringdp::bench {

Spread spread_of(std::span<const double> values) {
  if (values.empty()) return {};
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  const double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  return {median, sorted.front(), sorted.back()};
}

double geometric_mean(std::span<const double> values) {
  double log_sum = 0;
  int used = 0;
  for (double v : values) {
    if (v > 0 && std::isfinite(v)) {
      log_sum += std::log(v);
      ++used;
    }
  }
  return used == 0 ? 0.0 : std::exp(log_sum / used);
}

}  // namespace ringdp::bench
