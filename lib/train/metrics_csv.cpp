#include "ringdp/train/metrics_csv.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <fstream>
#include <limits>
#include <system_error>

#include "ringdp/io/durable_file.hpp"
#include "ringdp/error.hpp"

namespace ringdp::train {
namespace {

std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

std::string header_line() {
  std::string line;
  for (const std::string& c : metrics_columns()) {
    if (!line.empty()) line += ',';
    line += c;
  }
  return line;
}

// Shortest text that reads back to the same double ("{}" in fmt); NaN -> empty cell.
std::string cell(double v) { return std::isnan(v) ? std::string() : fmt::format("{}", v); }

}  // namespace

MetricsRow metrics_row(std::string kind, std::int64_t epoch, std::int64_t step,
                       const EpochResult& train) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const double seconds = train.seconds;
  return {.kind = std::move(kind),
          .epoch = epoch,
          .step = step,
          .learning_rate = train.learning_rate,
          .train_loss = train.loss,
          .train_accuracy = train.accuracy,
          .test_loss = kNaN,
          .test_accuracy = kNaN,
          .samples = train.samples,
          .seconds = seconds,
          .samples_per_second = seconds > 0 ? static_cast<double>(train.samples) / seconds : 0.0,
          .data_s = train.times.data,
          .forward_s = train.times.forward,
          .backward_s = train.times.backward,
          .exposed_comm_s = train.times.exposed_comm,
          .optimizer_s = train.times.optimizer,
          .skipped_steps = train.skipped_steps};
}

const std::vector<std::string>& metrics_columns() {
  static const std::vector<std::string> columns = {
      "kind",           "epoch",        "step",          "lr",         "train_loss",
      "train_accuracy", "test_loss",    "test_accuracy", "samples",    "seconds",
      "samples_per_s",  "data_s",       "forward_s",     "backward_s", "exposed_comm_s",
      "optimizer_s",    "skipped_steps"};
  return columns;
}

MetricsCsv::MetricsCsv(std::string path, std::int64_t resume_after_step) : path_(std::move(path)) {
  std::vector<std::string> kept;
  if (resume_after_step >= 0) {
    // Carry the rows of the run being resumed, up to the checkpoint's step; later rows
    // (trained after the checkpoint, then lost) are trained again and written anew.
    std::ifstream old(path_);
    std::string line;
    if (old && std::getline(old, line) && line == header_line()) {
      while (std::getline(old, line)) {
        const std::size_t a = line.find(',');
        const std::size_t b = a == std::string::npos ? a : line.find(',', a + 1);
        const std::size_t c = b == std::string::npos ? b : line.find(',', b + 1);
        if (c == std::string::npos) continue;
        try {
          if (std::stoll(line.substr(b + 1, c - b - 1)) <= resume_after_step) kept.push_back(line);
        } catch (const std::exception&) {
          // a damaged row of an old file is dropped, not fatal
        }
      }
    }
  }
  const std::string partial = partial_path();
  file_ = std::fopen(partial.c_str(), "w");
  if (file_ == nullptr) {
    throw IoError(fmt::format("cannot create metrics file '{}': {}", partial, errno_text()));
  }
  std::string text = header_line() + '\n';
  for (const std::string& row : kept) text += row + '\n';
  if (std::fputs(text.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    throw IoError(fmt::format("cannot write metrics file '{}': {}", partial, errno_text()));
  }
}

MetricsCsv::~MetricsCsv() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsCsv::write(const MetricsRow& r) {
  if (file_ == nullptr) throw IoError(fmt::format("metrics file '{}' is already closed", path_));
  const std::string line =
      fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.kind, r.epoch, r.step,
                  cell(r.learning_rate), cell(r.train_loss), cell(r.train_accuracy),
                  cell(r.test_loss), cell(r.test_accuracy), r.samples, cell(r.seconds),
                  cell(r.samples_per_second), cell(r.data_s), cell(r.forward_s), cell(r.backward_s),
                  cell(r.exposed_comm_s), cell(r.optimizer_s), r.skipped_steps);
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    throw IoError(fmt::format("cannot write metrics file '{}': {}", partial_path(), errno_text()));
  }
}

void MetricsCsv::close() {
  if (file_ == nullptr) return;
  const int status = std::fclose(file_);
  file_ = nullptr;
  if (status != 0) {
    throw IoError(fmt::format("cannot close metrics file '{}': {}", partial_path(), errno_text()));
  }
  io::publish_file(partial_path(), path_);
}

}  // namespace ringdp::train
