#include "metrics_log.hpp"

#include <exception>

namespace ringdp_train {

MetricsLog::MetricsLog(const ringdp::Communicator& comm, const Options& o, std::int64_t resume_step)
    : comm_(comm), steps_(o.metrics_steps) {
  if (o.metrics.empty()) return;
  ringdp::agree_on(comm, [&] {
    if (comm.rank() == 0) csv_.emplace(o.metrics, resume_step);
  });
  active_ = true;
}

void MetricsLog::write(const ringdp::train::MetricsRow& row) {
  if (!csv_ || failure_) return;
  try {
    csv_->write(row);
  } catch (const std::exception&) {
    failure_ = ringdp::current_failure();
  }
}

void MetricsLog::agree() {
  if (active_) ringdp::agree(comm_, failure_);
}

void MetricsLog::close() {
  if (!active_) return;
  agree();
  ringdp::agree_on(comm_, [&] {
    if (csv_) csv_->close();
  });
}

}  // namespace ringdp_train
