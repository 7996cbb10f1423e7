// The trainer's event record, and the Chrome trace writer: gather every rank's events on
// rank 0, write JSON, rename.

#include "ringdp/train/timeline.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "ringdp/io/durable_file.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"
#include "train/timeline_recorder.hpp"

namespace ringdp::train {

const char* to_string(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::Data:
      return "data";
    case EventKind::Forward:
      return "forward";
    case EventKind::Metrics:
      return "metrics";
    case EventKind::Backward:
      return "backward";
    case EventKind::Allreduce:
      return "allreduce";
    case EventKind::Wait:
      return "wait";
    case EventKind::Optimizer:
      return "optimizer";
    case EventKind::Evaluate:
      return "evaluate";
  }
  return "unknown";
}

namespace {

// An event travels as 7 doubles: every field is an integer below 2^53 or a time.
constexpr int kFields = 7;

void pack(const TimelineEvent& e, double* out) {
  out[0] = static_cast<double>(e.kind);
  out[1] = static_cast<double>(e.step);
  out[2] = e.start_us;
  out[3] = e.duration_us;
  out[4] = static_cast<double>(e.bytes);
  out[5] = static_cast<double>(e.buckets);
  out[6] = static_cast<double>(e.algorithm);
}

TimelineEvent unpack(const double* in) {
  TimelineEvent e;
  e.kind = static_cast<EventKind>(static_cast<int>(in[0]));
  e.step = static_cast<std::int64_t>(in[1]);
  e.start_us = in[2];
  e.duration_us = in[3];
  e.bytes = static_cast<std::int64_t>(in[4]);
  e.buckets = static_cast<std::int64_t>(in[5]);
  e.algorithm = static_cast<Algorithm>(static_cast<int>(in[6]));
  return e;
}

// Every rank's events, gathered on rank 0: `all` holds counts[r] packed events of each
// rank r from offsets[r] (on rank 0; empty elsewhere).
struct Gathered {
  std::vector<std::int64_t> counts;
  std::vector<int> offsets;
  std::vector<double> all;
};

Gathered gather_events(const Communicator& comm, std::vector<TimelineEvent> events) {
  // In start order: the trainer records a step's parts as they end, not as they begin.
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return a.start_us < b.start_us; });
  const int ranks = comm.size();
  Gathered g;
  g.counts.resize(static_cast<std::size_t>(ranks));
  const std::int64_t mine = static_cast<std::int64_t>(events.size());
  allgather<std::int64_t>(comm, std::span<const std::int64_t>(&mine, 1), g.counts);

  std::vector<double> packed(events.size() * kFields);
  for (std::size_t i = 0; i < events.size(); ++i) pack(events[i], packed.data() + i * kFields);
  std::vector<int> sizes(static_cast<std::size_t>(ranks));
  g.offsets.resize(static_cast<std::size_t>(ranks));
  std::size_t total = 0;
  for (std::size_t r = 0; r < g.counts.size(); ++r) {
    g.offsets[r] = checked_mpi_count(total);
    sizes[r] = checked_mpi_count(static_cast<std::size_t>(g.counts[r]) * kFields);
    total += static_cast<std::size_t>(g.counts[r]) * kFields;
  }
  static_cast<void>(checked_mpi_count(total));  // throws when the total overflows an int
  g.all.resize(comm.rank() == 0 ? total : 0);
  RINGDP_MPI_CHECK(MPI_Gatherv(packed.data(), checked_mpi_count(packed.size()), MPI_DOUBLE,
                               g.all.data(), sizes.data(), g.offsets.data(), MPI_DOUBLE, 0,
                               comm.native()));
  return g;
}

// The trace JSON of the gathered events: per rank its process and track names, then its
// events as complete events ("ph":"X").
void write_json(std::ostream& out, const Gathered& g) {
  out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  bool first = true;
  auto comma = [&] {
    if (!first) out << ",\n";
    first = false;
  };
  for (std::size_t r = 0; r < g.counts.size(); ++r) {
    comma();
    out << fmt::format(
        R"({{"name":"process_name","ph":"M","pid":{0},"tid":0,"args":{{"name":"rank {0}"}}}})", r);
    comma();
    out << fmt::format(
        R"({{"name":"thread_name","ph":"M","pid":{},"tid":0,"args":{{"name":"training"}}}})", r);
    comma();
    out << fmt::format(
        R"({{"name":"thread_name","ph":"M","pid":{},"tid":1,"args":{{"name":"reducer"}}}})", r);
    for (std::int64_t i = 0; i < g.counts[r]; ++i) {
      const TimelineEvent e =
          unpack(g.all.data() + g.offsets[r] + static_cast<std::size_t>(i) * kFields);
      comma();
      out << fmt::format(R"({{"name":"{}","ph":"X","pid":{},"tid":{},"ts":{:.3f},"dur":{:.3f},)",
                         to_string(e.kind), r, e.track(), e.start_us, e.duration_us);
      if (e.kind == EventKind::Allreduce) {
        out << fmt::format(R"("args":{{"step":{},"bytes":{},"buckets":{},"algorithm":"{}"}}}})",
                           e.step, e.bytes, e.buckets, ringdp::to_string(e.algorithm));
      } else {
        out << fmt::format(R"("args":{{"step":{}}}}})", e.step);
      }
    }
  }
  out << "\n]}\n";
}

// Rank 0: writes the trace to a hidden temporary beside `path` and publishes it by fsync +
// rename, so a crash leaves the previous trace or the complete new one under `path`, never
// a truncated JSON. Returns the failure (empty when written).
std::string write_trace_file(const std::string& path, const Gathered& g) {
  const std::string temporary = io::temporary_path_for(path);
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (out) write_json(out, g);
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      return fmt::format("cannot write the timeline '{}'", temporary);
    }
  }
  try {
    io::publish_file(temporary, path);  // removes the temporary on failure
  } catch (const Error& e) {
    return e.cause();
  }
  return {};
}

}  // namespace

StepTimes detail::StepMarks::times(double data_seconds) const {
  auto seconds = [](Moment a, Moment b) { return std::chrono::duration<double>(b - a).count(); };
  StepTimes t;
  t.data = data_seconds;
  t.forward = seconds(start, forward_end);
  t.exposed_comm = seconds(forward_end, early_end) + seconds(backward_end, late_end);
  t.backward = seconds(early_end, backward_end);
  t.optimizer = seconds(late_end, update_end);
  t.total = data_seconds + seconds(start, update_end);
  return t;
}

double detail::TimelineRecorder::microseconds(Moment t) const {
  return std::chrono::duration<double, std::micro>(t - origin_).count();
}

void detail::TimelineRecorder::add(EventKind kind, std::int64_t step, Moment begin, Moment end) {
  if (!enabled_) return;
  const double a = microseconds(begin);
  events_.push_back(
      {.kind = kind, .step = step, .start_us = a, .duration_us = microseconds(end) - a});
}

void detail::TimelineRecorder::add_step(std::int64_t step, const StepMarks& m,
                                        const GradientReducer& reducer) {
  if (!enabled_) return;
  add(EventKind::Forward, step, m.start, m.forward_end);
  if (m.metrics_early) {
    add(EventKind::Metrics, step, m.forward_end, m.early_end);
  } else {
    add(EventKind::Metrics, step, m.wait_end, m.late_end);
  }
  if (!m.backward) return;
  add(EventKind::Backward, step, m.early_end, m.backward_end);
  const auto& timings = reducer.timings();
  for (const ReductionUnit& unit : reducer.units()) {
    const BucketTiming& t = timings[unit.first];
    const double a = microseconds(t.started);
    events_.push_back({.kind = EventKind::Allreduce,
                       .step = step,
                       .start_us = a,
                       .duration_us = microseconds(t.finished) - a,
                       .bytes = static_cast<std::int64_t>(unit.bytes),
                       .buckets = static_cast<std::int64_t>(unit.count),
                       .algorithm = t.algorithm});
  }
  add(EventKind::Wait, step, m.backward_end, m.wait_end);
  add(EventKind::Optimizer, step, m.late_end, m.update_end);
}

void write_chrome_trace(const Communicator& comm, const std::string& path,
                        const std::vector<TimelineEvent>& events) {
  const Gathered gathered = gather_events(comm, events);
  const std::string error = comm.rank() == 0 ? write_trace_file(path, gathered) : std::string();
  // Rank 0's failure becomes every rank's error.
  agree(comm, error.empty() ? std::nullopt : std::optional<Failure>({ErrorKind::Io, error}));
}

}  // namespace ringdp::train
