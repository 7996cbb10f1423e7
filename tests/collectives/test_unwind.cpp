// A collective that fails in the middle (ringdp::testing::fail_nth_wait makes a wait throw
// MpiError, on every rank, before it polls) must leave nothing in flight: no receive still
// writing into ringdp's buffers, no message of the failed call left on the communicator.
// Checked two ways after each failure: no message is waiting on ringdp's communicator (an
// MPI_Iprobe after a barrier, on another communicator, that every rank passed once its
// failed call had settled), and the next allreduce on the same communicator, which uses
// the same tag and peers and would receive any leftover message, equals PMPI_Allreduce
// exactly (int64 sums).
//
// The [one-rank-fails] case fails one rank only: its peers wait in the call and never
// settle it, so that rank must end the job (with a message) instead of hanging or
// returning while MPI may still write into its buffers. CTest checks the message.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "reference.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/stall.hpp"
#include "ringdp/error.hpp"
#include "ringdp/testing.hpp"

using ringdp::Algorithm;
using ringdp::ReduceOp;
using ringdp::test::all_ranks;

namespace {

std::uint64_t next_seed() {
  static std::uint64_t seed = 101;
  return seed++;
}

// Runs `algorithm` on `count` int64 with its `nth` wait failing on every rank; true on
// every rank when every rank threw the injected MpiError.
bool fails_as_injected(const ringdp::Communicator& comm, std::size_t count, Algorithm algorithm,
                       std::uint64_t nth) {
  auto data = ringdp::test::random_input<std::int64_t>(count, ReduceOp::Sum, next_seed());
  bool injected = false;
  ringdp::testing::fail_nth_wait(nth);
  try {
    ringdp::allreduce(comm, std::span<std::int64_t>(data), ReduceOp::Sum, algorithm);
  } catch (const ringdp::MpiError& e) {
    injected = e.cause().find("fail_nth_wait") != std::string::npos;
  }
  ringdp::testing::fail_nth_wait(0);
  return all_ranks(injected);
}

// Nothing of an earlier call waits on ringdp's communicator.
bool no_message_waiting(const ringdp::Communicator& comm) {
  MPI_Barrier(MPI_COMM_WORLD);
  int waiting = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm.native(), &waiting, MPI_STATUS_IGNORE);
  return all_ranks(waiting == 0);
}

// The next call on the same communicator equals PMPI_Allreduce.
bool next_call_right(const ringdp::Communicator& comm, std::size_t count, Algorithm algorithm) {
  const auto input = ringdp::test::random_input<std::int64_t>(count, ReduceOp::Sum, next_seed());
  const auto want = ringdp::test::mpi_reference(input, ReduceOp::Sum);
  auto got = input;
  ringdp::allreduce(comm, std::span<std::int64_t>(got), ReduceOp::Sum, algorithm);
  return all_ranks(got == want);
}

}  // namespace

TEST_CASE("a ring allreduce failing at any wait leaves nothing in flight", "[unwind]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const auto n = static_cast<std::size_t>(comm.size());
  // Segments of 512 B travel eagerly (sent at once, whether or not a receive is posted);
  // 64 KiB ones by rendezvous (a send waits for its receive: left alone, it never ends).
  for (const std::size_t segment_bytes : {std::size_t{512}, std::size_t{64} << 10}) {
    ringdp::set_ring_segment_bytes(segment_bytes);
    // Every chunk the same number of segments (5: more than the ring's 3 receive slots),
    // so that every rank's nth wait is the same point of the schedule: each step waits for
    // its 5 receives, then for its sends.
    const std::size_t segments = 5;
    const std::size_t count = n * segments * (segment_bytes / sizeof(std::int64_t));
    const std::uint64_t waits = 2 * (n - 1) * (segments + 1);
    for (const std::uint64_t nth : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{4},
                                    segments + 1, segments + 2, waits / 2, waits - 1, waits}) {
      INFO("segment " << segment_bytes << " B, " << n << " ranks, failing wait " << nth << " of "
                      << waits);
      CHECK(fails_as_injected(comm, count, Algorithm::Ring, nth));
      CHECK(no_message_waiting(comm));
      CHECK(next_call_right(comm, count, Algorithm::Ring));
    }
  }
  ringdp::set_ring_segment_bytes(0);
}

TEST_CASE("recursive doubling and the parameter server failing at their first wait", "[unwind]") {
  // Their ranks wait at different points of the schedule (recursive doubling folds the
  // ranks beyond a power of two; the server receives from each rank while the others send
  // once), so only the first wait is the same call on every rank. 1024 int64: a rendezvous
  // message; 16: sent with a blocking send (recursive doubling) or eagerly.
  ringdp::Communicator comm(MPI_COMM_WORLD);
  for (const Algorithm algorithm : {Algorithm::RecursiveDoubling, Algorithm::ParameterServer}) {
    for (const std::size_t count : {std::size_t{16}, std::size_t{1024}}) {
      INFO(ringdp::to_string(algorithm) << ", " << count << " int64");
      CHECK(fails_as_injected(comm, count, algorithm, 1));
      CHECK(no_message_waiting(comm));
      CHECK(next_call_right(comm, count, algorithm));
    }
  }
}

TEST_CASE("a ring allreduce failing on one rank only ends the job", "[one-rank-fails]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int last = comm.size() - 1;
  // The settle time is capped by the stall abort time: 1 s here, on the failing rank only
  // (the others would abort on their own otherwise, and wait in the call for ever).
  if (comm.rank() == last) {
    ringdp::set_stall_settings({.report_seconds = 60.0, .abort_seconds = 1.0});
    ringdp::testing::fail_nth_wait(3);
  }
  ringdp::set_ring_segment_bytes(1024);
  std::vector<std::int64_t> data(static_cast<std::size_t>(comm.size()) * 4096, 1);
  ringdp::allreduce(comm, std::span<std::int64_t>(data), ReduceOp::Sum, Algorithm::Ring);
  FAIL("the allreduce returned although rank " << last << " failed in it");
}

TEST_CASE("a GradientReducer step failing in its ring carries the error and the next step is right",
          "[unwind]") {
  // The reduction runs on the progress thread: the failure unwinds there, is settled there,
  // and reaches the caller from wait_all(); the reducer's communicator must be clean for
  // the next step. Two buckets, not fused, each one ring allreduce of one segment per
  // chunk: the failing wait is the first send wait of the first one.
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const auto n = static_cast<std::size_t>(comm.size());
  std::vector<float> arena(2 * 1000 * n);
  ringdp::ReducerOptions options;
  options.algorithm = Algorithm::Ring;
  options.op = ReduceOp::Sum;
  options.fusion_bytes = 0;
  ringdp::GradientReducer reducer(
      comm, ringdp::GradientReducer::split(arena, arena.size() / 2 * sizeof(float)), options);
  auto fill = [&](int step) {
    for (std::size_t i = 0; i < arena.size(); ++i) {
      arena[i] = static_cast<float>((i % 97) + static_cast<std::size_t>(comm.rank() + step));
    }
  };
  fill(0);
  ringdp::testing::fail_nth_wait(2);
  bool carried = false;
  try {
    reducer.submit_prefix(arena.size());
    reducer.wait_all();
  } catch (const ringdp::MpiError& e) {
    carried = e.cause().find("fail_nth_wait") != std::string::npos;
  }
  ringdp::testing::fail_nth_wait(0);
  CHECK(all_ranks(carried));
  fill(1);
  std::vector<float> want(arena.size());
  PMPI_Allreduce(arena.data(), want.data(), static_cast<int>(arena.size()), MPI_FLOAT, MPI_SUM,
                 MPI_COMM_WORLD);
  reducer.submit_prefix(arena.size());
  reducer.wait_all();
  CHECK(all_ranks(arena == want));
}
