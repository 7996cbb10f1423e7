// The stall inspector inside one job: sequence numbers agree across ranks, the context
// and settings behave, and a rank that arrives late in a collective is named in rank 0's
// line (read back from rank 0's stderr) with the caller's step and buckets, the results
// stay right, and no report or answer is left in flight once the stall has resolved.
// Abort and the training application are covered by stall_tests.py.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/testing.hpp"
#include "ringdp/ringdp.hpp"

namespace {

using ringdp::Algorithm;
using ringdp::Communicator;
using ringdp::ReduceOp;
using ringdp::StallContext;
using ringdp::StallSettings;
using ringdp::test::all_ranks;
using ringdp::test::world_rank;
using ringdp::test::world_size;

// Short limits for the tests, restored afterwards. Reports after 0.4 s; rank 0 prints
// 0.25 s later (the grace period) and then every 0.4 s, so a rank late by kLate is named in
// three lines, of which the last one is checked: by then every waiting rank has reported,
// however the ranks were scheduled on a loaded machine.
constexpr double kReportSeconds = 0.4;
constexpr auto kLate = std::chrono::milliseconds(1600);

class ShortLimits {
 public:
  ShortLimits() { ringdp::set_stall_settings({.report_seconds = kReportSeconds}); }
  ~ShortLimits() { ringdp::set_stall_settings(saved_); }
  ShortLimits(const ShortLimits&) = delete;
  ShortLimits& operator=(const ShortLimits&) = delete;

 private:
  StallSettings saved_ = ringdp::stall_settings();
};

// Captures what this process writes to file descriptor 2 (where the inspector prints)
// until finish(), which returns it and also passes it on, so the test log shows it.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(fileno(file_), 2);
  }
  ~StderrCapture() { static_cast<void>(finish()); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string finish() {
    if (saved_ < 0) return text_;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
    std::rewind(file_);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;)
      text_.append(buffer, n);
    std::fclose(file_);
    std::fputs(text_.c_str(), stderr);
    return text_;
  }

 private:
  std::FILE* file_ = std::tmpfile();
  int saved_ = -1;
  std::string text_;
};

// The last "ringdp: stall: rank 0 waited" line of `text`, or "".
std::string last_rank0_line(const std::string& text) {
  const std::string marker = "ringdp: stall: rank 0 waited";
  const std::size_t at = text.rfind(marker);
  if (at == std::string::npos) return {};
  return text.substr(at, text.find('\n', at) - at);
}

// What rank 0 must say when rank `late` (the last one) has not arrived and every other
// rank waits in the same call. Written from the documented format, not from the code.
std::string expected_names(int size) {
  const int late = size - 1;
  std::string waiting = size == 2 ? "no rank reported waiting in the same call"
                        : size == 3
                            ? "rank 1 waiting in the same call"
                            : "ranks 1-" + std::to_string(late - 1) + " waiting in the same call";
  return "; ranks not arrived: " + std::to_string(late) + " (" + waiting + ")";
}

}  // namespace

TEST_CASE("collectives are numbered alike on every rank", "[stall]") {
  Communicator comm;
  // Building it is its first collective: the ranks agree on their settings.
  CHECK(all_ranks(comm.collective_count() == 1));
  const int n = comm.size();
  std::vector<float> v(10, 1.0f);
  for (const Algorithm a : {Algorithm::Ring, Algorithm::RecursiveDoubling, Algorithm::Mpi,
                            Algorithm::ParameterServer}) {
    ringdp::allreduce<float>(comm, v, ReduceOp::Sum, a);
  }
  ringdp::broadcast<float>(comm, v, 0);
  std::vector<float> all(v.size() * static_cast<std::size_t>(n));
  // The ring: Auto would pick shm on one node, whose first call also makes the node's
  // shared window (one agreement more, counted like any collective).
  ringdp::allgather<float>(comm, v, all, Algorithm::Ring);
  std::vector<float> blocks(3 * static_cast<std::size_t>(n), 1.0f);
  std::vector<float> mine(3);
  ringdp::reduce_scatter<float>(comm, blocks, mine, ReduceOp::Sum, Algorithm::Ring);
  comm.barrier();
  ringdp::agree(comm, "");
  // Nine calls above, each one collective of the communicator, after its construction.
  CHECK(all_ranks(comm.collective_count() == 10));
  // A second communicator counts its own.
  Communicator other;
  other.barrier();
  CHECK(all_ranks(other.collective_count() == 2 && comm.collective_count() == 10));
}

TEST_CASE("the stall context belongs to its communicator", "[stall]") {
  Communicator a;
  Communicator b;
  const StallContext unset = a.stall_context();
  CHECK(all_ranks(unset.step == -1 && unset.first_bucket == -1 && unset.buckets == 0));
  a.set_stall_context({.step = 57, .first_bucket = 2, .buckets = 3});
  const StallContext got = a.stall_context();
  CHECK(all_ranks(got.step == 57 && got.first_bucket == 2 && got.buckets == 3));
  CHECK(all_ranks(b.stall_context().step == -1));
  Communicator moved(std::move(a));
  CHECK(all_ranks(moved.stall_context().step == 57));
}

TEST_CASE("stall settings are validated", "[stall]") {
  const StallSettings saved = ringdp::stall_settings();
  bool ok = true;
  for (const double bad :
       {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    try {
      ringdp::set_stall_settings({.report_seconds = bad});
      ok = false;
    } catch (const ringdp::InvalidArgument&) {
    }
    try {
      ringdp::set_stall_settings({.abort_seconds = bad});
      ok = false;
    } catch (const ringdp::InvalidArgument&) {
    }
  }
  ringdp::set_stall_settings({.report_seconds = 2.5, .abort_seconds = 7.0});
  const StallSettings now = ringdp::stall_settings();
  ok = ok && now.report_seconds == 2.5 && now.abort_seconds == 7.0;
  ringdp::set_stall_settings(saved);
  CHECK(all_ranks(ok));
}

TEST_CASE("rank 0 names the rank that arrives late, with the step", "[stall]") {
  if (world_size() < 2) return;  // one rank never waits
  const ShortLimits limits;
  Communicator comm;
  const int rank = comm.rank();
  const int late = comm.size() - 1;
  for (const Algorithm algorithm : {Algorithm::Ring, Algorithm::RecursiveDoubling}) {
    comm.set_stall_context({.step = 41});
    std::vector<double> data(1000);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::sin(1.0 + rank + 0.01 * i);
    std::vector<double> reference = data;
    PMPI_Allreduce(MPI_IN_PLACE, reference.data(), static_cast<int>(reference.size()), MPI_DOUBLE,
                   MPI_SUM, MPI_COMM_WORLD);
    StderrCapture capture;
    if (rank == late) std::this_thread::sleep_for(kLate);
    ringdp::allreduce<double>(comm, data, ReduceOp::Sum, algorithm);
    const std::string text = capture.finish();
    INFO("algorithm " << ringdp::to_string(algorithm) << ", rank " << rank << " printed:\n"
                      << text);
    const std::string line = last_rank0_line(text);
    const std::string call = "in allreduce #" + std::to_string(comm.collective_count()) +
                             " (step 41)" + expected_names(comm.size());
    // Ring and recursive doubling sum in different orders: compare with a tolerance.
    bool close = true;
    for (std::size_t i = 0; i < data.size(); ++i) {
      close = close && std::abs(data[i] - reference[i]) <= 1e-12 * (1.0 + std::abs(reference[i]));
    }
    CHECK(all_ranks(close));
    CHECK(all_ranks(rank != 0 || line.find(call) != std::string::npos));
    CHECK(all_ranks(rank != 0 || text.find("ended after") != std::string::npos));
    // Rank 0 answered: no rank printed its own "rank 0 has not answered" line.
    CHECK(all_ranks(text.find("has not answered") == std::string::npos));
    CHECK(all_ranks(ringdp::testing::stall_sends_in_flight(comm) == 0));
  }
}

TEST_CASE("a rank late at an agreement is named", "[stall]") {
  // The agreements (agree, agree_equal: at every Communicator's construction, in check
  // mode, around the trainer's and the loader's checks) wait for all ranks; a rank that does
  // not come must be reported like one late at an allreduce.
  if (world_size() < 2) return;
  const ShortLimits limits;
  Communicator comm;
  const int rank = comm.rank();
  const int late = comm.size() - 1;
  const std::vector<std::int64_t> values = {7, 11};
  StderrCapture capture;
  if (rank == late) std::this_thread::sleep_for(kLate);
  ringdp::agree_equal(comm, values, [](const ringdp::Disagreement&) { return std::string(); });
  const std::string text = capture.finish();
  INFO("rank " << rank << " printed:\n" << text);
  const std::string call = "in agree #" + std::to_string(comm.collective_count()) +
                           expected_names(comm.size());
  CHECK(all_ranks(comm.collective_count() == 2));
  CHECK(all_ranks(rank != 0 || last_rank0_line(text).find(call) != std::string::npos));
  CHECK(all_ranks(rank != 0 || text.find("ended after") != std::string::npos));
  CHECK(all_ranks(text.find("has not answered") == std::string::npos));
  CHECK(all_ranks(ringdp::testing::stall_sends_in_flight(comm) == 0));
}

TEST_CASE("when rank 0 is late, the waiting ranks name it", "[stall]") {
  if (world_size() < 2) return;
  const ShortLimits limits;
  Communicator comm;
  const int rank = comm.rank();
  std::vector<double> data(100, 1.0);
  StderrCapture capture;
  if (rank == 0) std::this_thread::sleep_for(kLate);
  ringdp::allreduce<double>(comm, data, ReduceOp::Sum, Algorithm::Ring);
  const std::string text = capture.finish();
  INFO("rank " << rank << " printed:\n" << text);
  const std::string own = "ringdp: stall: rank " + std::to_string(rank) + " waited";
  const bool named = text.find(own) != std::string::npos &&
                     text.find("rank 0 has not answered its stall report") != std::string::npos;
  // Exactly one such line per waiting rank (once per stall, not per poll).
  const std::size_t first = text.find("has not answered");
  const bool once =
      first == std::string::npos || text.find("has not answered", first + 1) == std::string::npos;
  CHECK(all_ranks(rank == 0 || (named && once)));
  CHECK(all_ranks(rank != 0 || last_rank0_line(text).empty()));
  bool right = true;
  for (const double x : data) right = right && x == comm.size();
  CHECK(all_ranks(right));
  CHECK(all_ranks(ringdp::testing::stall_sends_in_flight(comm) == 0));
  // The reports rank 0 never read stay on the channel: later calls are not confused by
  // them, and the communicator's destructor drops them.
  comm.barrier();
  ringdp::allreduce<double>(comm, data, ReduceOp::Sum, Algorithm::RecursiveDoubling);
  right = true;
  for (const double x : data) right = right && x == comm.size() * comm.size();
  CHECK(all_ranks(right));
}

TEST_CASE("a late bucket is named with the step and the buckets", "[stall]") {
  if (world_size() < 2) return;
  const ShortLimits limits;
  Communicator comm;
  const int rank = comm.rank();
  const int late = comm.size() - 1;
  constexpr std::size_t kFloats = 3000;
  std::vector<float> arena(kFloats);
  for (std::size_t i = 0; i < kFloats; ++i) arena[i] = static_cast<float>(rank + 1) * 0.5f;
  // 1000 floats per bucket, no fusion: three reductions, bucket 0 first.
  ringdp::GradientReducer reducer(comm, ringdp::GradientReducer::split(arena, 4000),
                                  {.fusion_bytes = 0});
  reducer.set_stall_step(7);
  StderrCapture capture;
  if (rank == late) std::this_thread::sleep_for(kLate);
  reducer.submit_prefix(kFloats);
  reducer.wait_all();
  const std::string text = capture.finish();
  INFO("rank " << rank << " printed:\n" << text);
  const std::string line = last_rank0_line(text);
  CHECK(all_ranks(rank != 0 || line.find("(step 7, bucket 0)" + expected_names(comm.size())) !=
                                   std::string::npos));
  // The average of (r + 1) / 2 over ranks r = 0..n-1 is (n + 1) / 4, exact in binary for
  // these small n.
  const float expected = static_cast<float>(comm.size() + 1) / 4.0f;
  bool right = true;
  for (const float x : arena) right = right && x == expected;
  CHECK(all_ranks(right));
}
