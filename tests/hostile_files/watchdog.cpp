#include "watchdog.hpp"

#include <cstdio>
#include <cstdlib>

namespace ringdp::test {

Watchdog::Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watchdog::arm(std::string name) {
  std::lock_guard lock(mutex_);
  name_ = std::move(name);
  deadline_ = std::chrono::steady_clock::now() + limit_;
  armed_ = true;
  wake_.notify_all();
}

void Watchdog::disarm() {
  std::lock_guard lock(mutex_);
  armed_ = false;
}

void Watchdog::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (!armed_) {
      wake_.wait(lock);
      continue;
    }
    // Waiting until the deadline, not for a fixed time: arm() may move it at any moment.
    const auto deadline = deadline_;
    if (wake_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ &&
        deadline_ == deadline) {
      std::fprintf(stderr, "hostile-file case '%s' still running after %lld s: hang\n",
                   name_.c_str(), static_cast<long long>(limit_.count()));
      std::fflush(stderr);
      std::abort();
    }
  }
}

}  // namespace ringdp::test
