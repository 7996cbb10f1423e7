// Totals and medians of step times.

#include "ringdp/train/time_stats.hpp"

#include <algorithm>

namespace ringdp::train {
namespace {

constexpr double StepTimes::*kFields[] = {&StepTimes::data,      &StepTimes::forward,
                                          &StepTimes::backward,  &StepTimes::exposed_comm,
                                          &StepTimes::optimizer, &StepTimes::total};

}  // namespace

StepTimes& StepTimes::operator+=(const StepTimes& other) noexcept {
  for (auto field : kFields) this->*field += other.*field;
  return *this;
}

StepTimes TimeStats::totals() const {
  StepTimes sum;
  for (const auto& t : steps_) sum += t;
  return sum;
}

StepTimes TimeStats::medians() const {
  StepTimes median;
  if (steps_.empty()) return median;
  std::vector<double> values(steps_.size());
  for (auto field : kFields) {
    for (std::size_t i = 0; i < steps_.size(); ++i) values[i] = steps_[i].*field;
    const auto mid = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), mid, values.end());
    double m = *mid;
    if (values.size() % 2 == 0) m = (m + *std::max_element(values.begin(), mid)) / 2.0;
    median.*field = m;
  }
  return median;
}

}  // namespace ringdp::train
