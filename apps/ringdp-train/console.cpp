#include "console.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string_view>

#include "ringdp/comm/settings.hpp"

namespace ringdp_train {
namespace {

// Whether the user sees our stdout on a terminal. Open MPI gives every local rank a
// pseudo-terminal for stdout even when mpirun's own output goes to a file or a pipe, so
// isatty() alone says "terminal" for `mpirun ... > log`. What the user sees is the
// launcher's stdout: under Open MPI, look at the parent's (mpirun, or orted on other
// nodes, whose output is not a terminal). When that cannot be read, lines are the safe
// choice: they are readable everywhere.
bool stdout_is_terminal() {
  if (::isatty(STDOUT_FILENO) != 1) return false;
  if (!ringdp::launch_info().open_mpi) return true;
  const std::string link = fmt::format("/proc/{}/fd/1", ::getppid());
  char target[256] = {};
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return false;
  const std::string_view t(target, static_cast<std::size_t>(n));
  return t.starts_with("/dev/pts/") || t.starts_with("/dev/tty");
}

}  // namespace

Console::Console(bool active, bool quiet, const std::string& mode, double interval)
    : active_(active), quiet_(quiet), interval_(interval) {
  if (mode == "off" || quiet) enabled_ = false;
  in_place_ = mode == "tty" || (mode == "auto" && stdout_is_terminal());
}

void Console::end_progress() {
  if (!active_ || !live_) return;
  std::fputs("\n", stdout);
  std::fflush(stdout);
  live_ = false;
}

void Console::line(const std::string& text) {
  if (!active_ || quiet_) return;
  end_progress();
  std::fputs((text + '\n').c_str(), stdout);
  std::fflush(stdout);
}

void Console::always(const std::string& text) {
  if (!active_) return;
  end_progress();
  std::fputs((text + '\n').c_str(), stdout);
  std::fflush(stdout);
}

void Console::progress(const Progress& p) {
  if (!active_ || !enabled_) return;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  // Redrawing faster than the eye reads only costs time; lines into a file or a pipe
  // come at the chosen interval (the epoch summaries carry the rest).
  if (since < (in_place_ ? 0.1 : interval_) && p.step < p.steps) return;
  if (!in_place_ && p.step >= p.steps) return;  // the epoch summary follows at once
  last_ = now;
  const std::string text = fmt::format(
      "epoch {}/{}  step {:>{}}/{}  loss {:.4f}  acc {:5.2f}%  {:>8.0f} samples/s  ETA {}", p.epoch,
      p.epochs, p.step, std::to_string(p.steps).size(), p.steps, p.loss, 100.0 * p.accuracy,
      p.samples_per_second, format_seconds(p.eta_seconds));
  if (in_place_) {
    // \r returns to the line start, \x1b[K clears what a longer previous line left.
    std::fputs(("\r" + text + "\x1b[K").c_str(), stdout);
    live_ = true;
  } else {
    std::fputs((text + '\n').c_str(), stdout);
  }
  std::fflush(stdout);
}

std::string format_seconds(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60.0) return fmt::format("{:.1f} s", s);
  const auto total = static_cast<long long>(std::llround(s));
  if (total < 3600) return fmt::format("{} min {:02} s", total / 60, total % 60);
  return fmt::format("{} h {:02} min", total / 3600, (total / 60) % 60);
}

std::string format_bytes(double b) {
  if (b < 1e3) return fmt::format("{:.0f} B", b);
  if (b < 1e6) return fmt::format("{:.1f} kB", b / 1e3);
  if (b < 1e9) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.2f} GB", b / 1e9);
}

std::string format_count(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace ringdp_train
