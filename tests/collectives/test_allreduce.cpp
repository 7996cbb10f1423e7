// Every allreduce algorithm against PMPI_Allreduce, for every type, operation and an
// awkward set of counts, with bit-identical results on every rank.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mpi_test.hpp"
#include "reference.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/testing.hpp"

using ringdp::Algorithm;
using ringdp::ReduceOp;
using ringdp::test::all_ranks;

namespace {

const Algorithm kAlgorithms[] = {Algorithm::Ring, Algorithm::RecursiveDoubling, Algorithm::Mpi,
                                 Algorithm::ParameterServer, Algorithm::Auto};

std::vector<std::size_t> small_counts() {
  const auto n = static_cast<std::size_t>(ringdp::test::world_size());
  return {0, 1, 2, n - 1, n, n + 1, 1009};
}

std::uint64_t next_seed() {
  static std::uint64_t seed = 1;
  return seed++;
}

// One allreduce checked three ways: against MPI, bit-identical across ranks, and (via the
// caller) under shrunken limits. Returns true on every rank when all held on every rank.
template <class T>
bool run_case(const ringdp::Communicator& comm, std::size_t count, ReduceOp op,
              Algorithm algorithm) {
  const auto input = ringdp::test::random_input<T>(count, op, next_seed());
  const auto want = ringdp::test::mpi_reference(input, op);
  auto got = input;
  ringdp::allreduce(comm, std::span<T>(got), op, algorithm);
  const std::size_t wrong = ringdp::test::count_wrong<T>(got, want, input, op);
  const bool identical =
      ringdp::test::same_on_all_ranks(ringdp::test::hash_bytes(got.data(), got.size() * sizeof(T)));
  const bool ok = all_ranks(wrong == 0) && identical;
  if (!ok) {
    UNSCOPED_INFO("type " << ringdp::to_string(ringdp::data_type_of<T>) << " op "
                          << ringdp::to_string(op) << " algorithm " << ringdp::to_string(algorithm)
                          << " count " << count << ": " << wrong << " wrong on this rank, "
                          << (identical ? "identical" : "NOT identical") << " across ranks");
  }
  return ok;
}

template <class T>
bool sweep_small(const ringdp::Communicator& comm) {
  bool ok = true;
  for (Algorithm algorithm : kAlgorithms) {
    for (ReduceOp op : ringdp::test::ops_for<T>()) {
      for (std::size_t count : small_counts()) ok = run_case<T>(comm, count, op, algorithm) && ok;
    }
  }
  return ok;
}

// Restores a process-wide knob at scope exit, so one failing check cannot leak into others.
struct SegmentBytes {
  explicit SegmentBytes(std::size_t bytes) : saved(ringdp::ring_segment_bytes()) {
    ringdp::set_ring_segment_bytes(bytes);
  }
  ~SegmentBytes() { ringdp::set_ring_segment_bytes(saved); }
  std::size_t saved;
};

struct MaxMpiCount {
  explicit MaxMpiCount(std::size_t count) { ringdp::testing::set_max_mpi_count(count); }
  ~MaxMpiCount() { ringdp::testing::set_max_mpi_count(0); }
};

}  // namespace

TEMPLATE_TEST_CASE("allreduce matches MPI_Allreduce for every algorithm, op and small count",
                   "[allreduce]", float, double, std::int32_t, std::int64_t) {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  CHECK(sweep_small<TestType>(comm));
}

TEMPLATE_TEST_CASE("allreduce walks the multi-segment and split-message paths", "[allreduce]",
                   float, std::int64_t) {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  // Segments of 3 elements: the ring's chunks are cut into many segments, with a short
  // last one, and more segments than receive slots. A 7-element MPI count limit makes
  // every algorithm that calls MPI with whole buffers split them into pieces.
  SegmentBytes tiny_segments(3 * sizeof(TestType));
  MaxMpiCount tiny_messages(7);
  CHECK(sweep_small<TestType>(comm));
}

TEST_CASE("allreduce of 2^20+3 elements matches MPI_Allreduce", "[allreduce][large]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const std::size_t count = (std::size_t{1} << 20) + 3;
  bool ok = true;
  for (Algorithm algorithm : kAlgorithms) {
    ok = run_case<float>(comm, count, ReduceOp::Sum, algorithm) && ok;
    ok = run_case<std::int64_t>(comm, count, ReduceOp::Sum, algorithm) && ok;
  }
  ok = run_case<double>(comm, count, ReduceOp::Average, Algorithm::Ring) && ok;
  ok = run_case<float>(comm, count, ReduceOp::Max, Algorithm::Ring) && ok;
  ok = run_case<std::int32_t>(comm, count, ReduceOp::Product, Algorithm::Ring) && ok;
  CHECK(ok);
}

TEST_CASE("repeated ring allreduces reuse the communicator's scratch correctly", "[allreduce]") {
  // Different sizes in turn: the scratch grows and is reused, and stale contents from an
  // earlier call must never leak into a later result.
  ringdp::Communicator comm(MPI_COMM_WORLD);
  bool ok = true;
  for (std::size_t count : {100000u, 17u, 300000u, 5u, 100000u}) {
    ok = run_case<double>(comm, count, ReduceOp::Sum, Algorithm::Ring) && ok;
    ok = run_case<double>(comm, count, ReduceOp::Sum, Algorithm::RecursiveDoubling) && ok;
  }
  CHECK(ok);
}

TEST_CASE("allreduce works on a communicator that is a subset of the world", "[allreduce]") {
  ringdp::Communicator world(MPI_COMM_WORLD);
  ringdp::Communicator half = world.split(world.rank() % 2, world.rank());
  // Within each half, sum rank numbers: the expected value follows from the split.
  std::vector<std::int64_t> data(1009, world.rank());
  ringdp::allreduce(half, std::span<std::int64_t>(data), ReduceOp::Sum, Algorithm::Ring);
  std::int64_t expected = 0;
  for (int r = world.rank() % 2; r < world.size(); r += 2) expected += r;
  bool ok = true;
  for (auto v : data) ok = ok && v == expected;
  CHECK(all_ranks(ok));
}

TEST_CASE("a moved Communicator keeps working, scratch and all", "[allreduce]") {
  ringdp::Communicator first(MPI_COMM_WORLD);
  bool ok = run_case<float>(first, 5000, ReduceOp::Sum, Algorithm::Ring);  // scratch allocated
  ringdp::Communicator second(std::move(first));
  ok = run_case<float>(second, 7000, ReduceOp::Sum, Algorithm::Ring) && ok;
  ringdp::Communicator third(MPI_COMM_WORLD);
  third = std::move(second);
  ok = run_case<float>(third, 3000, ReduceOp::Max, Algorithm::RecursiveDoubling) && ok;
  CHECK(ok);
}
