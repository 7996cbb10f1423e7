#pragma once
// Summary statistics of the timings.

#include <span>

namespace ringdp::bench {

struct Spread {
  double median = 0;
  double min = 0;
  double max = 0;
};

/// Median (mean of the two middle values for an even count), minimum and maximum.
/// All zero for an empty input.
Spread spread_of(std::span<const double> values);

/// Geometric mean of the positive values; 0 when there are none.
double geometric_mean(std::span<const double> values);

}  // namespace ringdp::bench
