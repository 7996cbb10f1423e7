// The Chrome trace writer: gather every rank's events on rank 0, write JSON, rename.

#include "ringdp/train/timeline.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <cstdio>
#include <fstream>

#include "ringdp/io/durable_file.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"

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

}  // namespace

void write_chrome_trace(const Communicator& comm, const std::string& path,
                        const std::vector<TimelineEvent>& events) {
  const int ranks = comm.size();
  const std::int64_t mine = static_cast<std::int64_t>(events.size());
  std::vector<std::int64_t> counts(static_cast<std::size_t>(ranks));
  allgather<std::int64_t>(comm, std::span<const std::int64_t>(&mine, 1), counts);

  std::vector<double> packed(events.size() * kFields);
  for (std::size_t i = 0; i < events.size(); ++i) pack(events[i], packed.data() + i * kFields);
  std::vector<int> sizes(static_cast<std::size_t>(ranks));
  std::vector<int> offsets(static_cast<std::size_t>(ranks));
  std::size_t total = 0;
  for (int r = 0; r < ranks; ++r) {
    offsets[r] = checked_mpi_count(total);
    sizes[r] = checked_mpi_count(static_cast<std::size_t>(counts[r]) * kFields);
    total += static_cast<std::size_t>(counts[r]) * kFields;
  }
  static_cast<void>(checked_mpi_count(total));  // throws when the total overflows an int
  std::vector<double> all(comm.rank() == 0 ? total : 0);
  RINGDP_MPI_CHECK(MPI_Gatherv(packed.data(), checked_mpi_count(packed.size()), MPI_DOUBLE,
                               all.data(), sizes.data(), offsets.data(), MPI_DOUBLE, 0,
                               comm.native()));

  std::string error;
  if (comm.rank() == 0) {
    // A hidden temporary beside the target, published by fsync + rename: a crash leaves
    // the previous trace or the complete new one under `path`, never a truncated JSON.
    const std::string temporary = io::temporary_path_for(path);
    {
      std::ofstream out(temporary, std::ios::trunc);
      if (out) {
        out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
        bool first = true;
        auto comma = [&] {
          if (!first) out << ",\n";
          first = false;
        };
        for (int r = 0; r < ranks; ++r) {
          comma();
          out << fmt::format(
              R"({{"name":"process_name","ph":"M","pid":{0},"tid":0,"args":{{"name":"rank {0}"}}}})",
              r);
          comma();
          out << fmt::format(
              R"({{"name":"thread_name","ph":"M","pid":{},"tid":0,"args":{{"name":"training"}}}})",
              r);
          comma();
          out << fmt::format(
              R"({{"name":"thread_name","ph":"M","pid":{},"tid":1,"args":{{"name":"reducer"}}}})",
              r);
          for (std::int64_t i = 0; i < counts[r]; ++i) {
            const TimelineEvent e =
                unpack(all.data() + offsets[r] + static_cast<std::size_t>(i) * kFields);
            comma();
            out << fmt::format(
                R"({{"name":"{}","ph":"X","pid":{},"tid":{},"ts":{:.3f},"dur":{:.3f},)",
                to_string(e.kind), r, e.track(), e.start_us, e.duration_us);
            if (e.kind == EventKind::Allreduce) {
              out << fmt::format(
                  R"("args":{{"step":{},"bytes":{},"buckets":{},"algorithm":"{}"}}}})", e.step,
                  e.bytes, e.buckets, ringdp::to_string(e.algorithm));
            } else {
              out << fmt::format(R"("args":{{"step":{}}}}})", e.step);
            }
          }
        }
        out << "\n]}\n";
      }
      out.flush();
      if (!out) error = fmt::format("cannot write the timeline '{}'", temporary);
    }
    if (error.empty()) {
      try {
        io::publish_file(temporary, path);  // removes the temporary on failure
      } catch (const Error& e) {
        error = e.cause();
      }
    } else {
      std::remove(temporary.c_str());
    }
  }
  // Rank 0's failure becomes every rank's error.
  try {
    agree(comm, error);
  } catch (const Error& e) {
    throw IoError(e.rank(), e.cause(), true);
  }
}

}  // namespace ringdp::train
