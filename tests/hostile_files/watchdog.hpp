#pragma once
// A per-case watchdog for the hostile-file tests: if one case takes longer than its limit,
// the process prints which case hung and aborts, so a hang is reported by name within
// seconds instead of as an anonymous CTest timeout.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace ringdp::test {

class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  /// Starts timing a new case named `name` (restarts the clock).
  void arm(std::string name);
  /// Stops timing (between cases).
  void disarm();

 private:
  void run();

  std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string name_;
  std::chrono::steady_clock::time_point deadline_{};
  bool armed_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ringdp::test
