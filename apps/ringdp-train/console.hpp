#pragma once
// What rank 0 prints: the run header, the live progress line, epoch summaries and the
// final summary. Every method is local and does nothing on other ranks or when quiet.

#include <chrono>
#include <cstdint>
#include <string>

namespace ringdp_train {

/// Progress of the running epoch, for the live line.
struct Progress {
  std::int64_t epoch = 0;  // 1-based
  std::int64_t epochs = 0;
  std::int64_t step = 0;   // steps done in this epoch
  std::int64_t steps = 0;  // steps per epoch
  double loss = 0.0;       // running mean over the epoch so far
  double accuracy = 0.0;
  double samples_per_second = 0.0;
  double eta_seconds = 0.0;  // of the whole run
};

class Console {
 public:
  /// `mode`: "auto" (redraw in place when stdout is a terminal, else lines), "tty",
  /// "lines" or "off"; `interval` seconds between lines when not redrawing in place.
  Console(bool active, bool quiet, const std::string& mode, double interval);

  /// A line of the header or of a summary (printed unless quiet); ends a live line first.
  void line(const std::string& text);
  /// A line printed even when quiet (the final summary).
  void always(const std::string& text);
  /// The live progress line: redrawn at most every 0.1 s in place, or one line per interval.
  void progress(const Progress& p);
  /// Ends a live line in place (so the next output starts on a new line).
  void end_progress();

 private:
  using Clock = std::chrono::steady_clock;
  bool active_;
  bool quiet_;
  bool in_place_ = false;
  bool enabled_ = true;
  double interval_;
  bool live_ = false;  // a line drawn in place is on screen
  Clock::time_point last_ = Clock::time_point::min();
};

/// "1.23 s", "2 min 05 s".
std::string format_seconds(double seconds);
/// "1.6 MB" style (decimal units).
std::string format_bytes(double bytes);
/// 12345678 -> "12,345,678".
std::string format_count(std::int64_t n);

}  // namespace ringdp_train
