// The node-local algorithms: shm and hierarchical allreduce, for every type, operation and
// an awkward set of counts, on ordinary buffers, SharedBuffer spans and a mix of both;
// reduce_scatter and allgather over ring, shm and MPI against their MPI equivalents; the
// window's allocations; a call that differs between ranks. Registered at 1-5 ranks on one
// node, and with RINGDP_NODE_SIZE (several "nodes" of one machine, uneven ones included).

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "reference.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/shared_buffer.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"
#include "ringdp/testing.hpp"

using ringdp::Algorithm;
using ringdp::ReduceOp;
using ringdp::test::all_ranks;

namespace {

// Where a case's buffer lives.
enum class Memory { Ordinary, Shared, Mixed };

std::uint64_t next_seed() {
  static std::uint64_t seed = 5000;
  return seed++;
}

// Counts around the shm algorithm's thresholds: empty, tiny, fewer than ranks, the small
// path's largest (16 KiB), just above it (one round), and several rounds (256 KiB each).
template <class T>
std::vector<std::size_t> counts() {
  const auto n = static_cast<std::size_t>(ringdp::test::world_size());
  const std::size_t small = 16 * 1024 / sizeof(T);
  return {0, 1, n - 1, n + 1, 1009, small, small + 1, 3 * 65536 / sizeof(T) * 4 + 7};
}

// The shm algorithm needs every rank on one node: elsewhere it must be refused alike.
bool runs_here(const ringdp::Communicator& comm, Algorithm algorithm) {
  return algorithm != Algorithm::Shm || comm.node_layout().one_node();
}

// One allreduce checked against MPI and for bit-identical results on every rank.
template <class T>
bool run_case(const ringdp::Communicator& comm, std::size_t count, ReduceOp op, Algorithm algorithm,
              Memory memory) {
  const auto input = ringdp::test::random_input<T>(count, op, next_seed());
  const auto want = ringdp::test::mpi_reference(input, op);
  const bool shared = memory == Memory::Shared || (memory == Memory::Mixed && comm.rank() % 2 == 1);
  ringdp::SharedBuffer<T> buffer(comm, count);
  std::vector<T> ordinary;
  std::span<T> got;
  if (shared) {
    got = buffer.span();
  } else {
    ordinary.resize(count);
    got = ordinary;
  }
  std::copy(input.begin(), input.end(), got.begin());
  ringdp::allreduce(comm, got, op, algorithm);
  const std::size_t wrong = ringdp::test::count_wrong<T>(got, want, input, op);
  const bool identical =
      ringdp::test::same_on_all_ranks(ringdp::test::hash_bytes(got.data(), got.size() * sizeof(T)));
  const bool ok = all_ranks(wrong == 0) && identical;
  if (!ok) {
    UNSCOPED_INFO("type " << ringdp::to_string(ringdp::data_type_of<T>) << " op "
                          << ringdp::to_string(op) << " algorithm " << ringdp::to_string(algorithm)
                          << " count " << count << " memory " << static_cast<int>(memory) << ": "
                          << wrong << " wrong here, " << (identical ? "identical" : "NOT identical")
                          << " across ranks");
  }
  return ok;
}

template <class T>
bool sweep(const ringdp::Communicator& comm, Algorithm algorithm) {
  bool ok = true;
  for (ReduceOp op : ringdp::test::ops_for<T>()) {
    for (std::size_t count : counts<T>()) {
      for (Memory memory : {Memory::Ordinary, Memory::Shared, Memory::Mixed}) {
        ok = run_case<T>(comm, count, op, algorithm, memory) && ok;
      }
    }
  }
  return ok;
}

}  // namespace

TEMPLATE_TEST_CASE("shm and hier allreduce match MPI_Allreduce on any memory", "[shm]", float,
                   double, std::int32_t, std::int64_t) {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  for (Algorithm algorithm : {Algorithm::Shm, Algorithm::Hierarchical, Algorithm::Auto}) {
    if (!runs_here(comm, algorithm)) continue;
    INFO("algorithm " << ringdp::to_string(algorithm));
    CHECK(sweep<TestType>(comm, algorithm));
  }
}

TEMPLATE_TEST_CASE("shm allreduce walks the slice path with small counts", "[shm]", float,
                   std::int64_t) {
  // Every message but 1 byte takes the owned slices, so counts of 1, fewer than ranks and
  // the like (slices of 0 or 1 element) go through it, on every kind of memory.
  ringdp::Communicator comm(MPI_COMM_WORLD);
  ringdp::testing::set_shm_small_bytes(1);
  bool ok = true;
  for (Algorithm algorithm : {Algorithm::Shm, Algorithm::Hierarchical}) {
    if (!runs_here(comm, algorithm)) continue;
    for (ReduceOp op : ringdp::test::ops_for<TestType>()) {
      for (std::size_t count :
           {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{1009}}) {
        for (Memory memory : {Memory::Ordinary, Memory::Shared, Memory::Mixed}) {
          ok = run_case<TestType>(comm, count, op, algorithm, memory) && ok;
        }
      }
    }
  }
  ringdp::testing::set_shm_small_bytes(0);
  CHECK(ok);
}

TEST_CASE("shm and hier allreduce of 2^20+3 elements", "[shm][large]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const std::size_t count = (std::size_t{1} << 20) + 3;
  bool ok = true;
  for (Algorithm algorithm : {Algorithm::Shm, Algorithm::Hierarchical}) {
    if (!runs_here(comm, algorithm)) continue;
    for (Memory memory : {Memory::Ordinary, Memory::Shared}) {
      ok = run_case<float>(comm, count, ReduceOp::Sum, algorithm, memory) && ok;
      ok = run_case<std::int64_t>(comm, count, ReduceOp::Sum, algorithm, memory) && ok;
    }
    ok = run_case<double>(comm, count, ReduceOp::Average, algorithm, Memory::Mixed) && ok;
  }
  CHECK(ok);
}

TEST_CASE("shm over several nodes is refused on every rank", "[shm]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  if (comm.node_layout().one_node()) return;
  std::vector<float> data(100, 1.0f);
  bool refused = false;
  try {
    ringdp::allreduce(comm, std::span<float>(data), ReduceOp::Sum, Algorithm::Shm);
  } catch (const ringdp::InvalidArgument& e) {
    refused = std::string(e.what()).find("one node") != std::string::npos;
  }
  CHECK(all_ranks(refused));
}

TEST_CASE("a node layout that every rank sees alike", "[shm]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const ringdp::NodeLayout& layout = comm.node_layout();
  // Layout facts, checked against an allgather of every rank's node index.
  std::vector<int> nodes(static_cast<std::size_t>(comm.size()));
  MPI_Allgather(&layout.node, 1, MPI_INT, nodes.data(), 1, MPI_INT, MPI_COMM_WORLD);
  int on_mine = 0;
  int highest = 0;
  for (int n : nodes) {
    on_mine += n == layout.node;
    highest = std::max(highest, n);
  }
  bool ok = on_mine == layout.size && highest + 1 == layout.nodes && layout.rank < layout.size &&
            layout.min_size <= layout.size && layout.size <= layout.max_size;
  int consecutive = 0;  // ranks of a node are numbered in communicator order
  for (int r = 0; r < comm.rank(); ++r)
    consecutive += nodes[static_cast<std::size_t>(r)] == layout.node;
  ok = ok && consecutive == layout.rank;
  CHECK(all_ranks(ok));
}

TEST_CASE("SharedBuffers keep their contents while the window grows and frees", "[shm]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int r = comm.rank();
  // A first buffer, filled; then allocations that do not fit (the window grows: a new
  // generation), some freed and made again. The first buffer must keep its values, and
  // every buffer must reduce correctly wherever it lives.
  ringdp::SharedBuffer<std::int64_t> first(comm, 1000);
  for (std::size_t i = 0; i < first.size(); ++i)
    first.data()[i] = r * 1000 + static_cast<std::int64_t>(i);
  bool ok = true;
  {
    ringdp::SharedBuffer<double> big(comm, 3 << 20);
    ringdp::SharedBuffer<float> other(comm, 12345);
    ok = run_case<float>(comm, 70000, ReduceOp::Sum, Algorithm::Auto, Memory::Shared) && ok;
  }
  ringdp::SharedBuffer<float> again(comm, 4 << 20);
  ok = run_case<double>(comm, 50000, ReduceOp::Max, Algorithm::Auto, Memory::Mixed) && ok;
  for (std::size_t i = 0; i < first.size(); ++i) {
    ok = ok && first.data()[i] == r * 1000 + static_cast<std::int64_t>(i);
  }
  ringdp::allreduce(comm, first.span(), ReduceOp::Sum);
  const std::int64_t n = comm.size();
  for (std::size_t i = 0; i < first.size(); ++i) {
    ok = ok && first.data()[i] == 1000 * n * (n - 1) / 2 + n * static_cast<std::int64_t>(i);
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("SharedBuffer sizes that differ are the same error on every rank", "[shm]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  if (comm.size() == 1) return;
  std::string message;
  int named = -1;
  try {
    ringdp::SharedBuffer<float> buffer(comm, comm.rank() == comm.size() - 1 ? 11 : 10);
  } catch (const ringdp::MismatchError& e) {
    message = e.what();
    named = e.rank();
  }
  INFO(message);
  CHECK(all_ranks(named == comm.size() - 1 && message.find("SharedBuffer") != std::string::npos));
  // The communicator goes on working.
  CHECK(run_case<float>(comm, 3000, ReduceOp::Sum, Algorithm::Auto, Memory::Shared));
}

TEST_CASE("a count that differs between ranks is the same error on every rank of a node", "[shm]") {
  // Without check mode: the ranks' announcements differ, and each rank finds it at its
  // first arrival. (Check mode finds it before, test_check_mode.cpp.)
  ringdp::Communicator comm(MPI_COMM_WORLD);
  if (comm.size() == 1 || !comm.node_layout().one_node()) return;
  for (std::size_t base : {std::size_t{100}, std::size_t{100000}}) {
    const std::size_t count = comm.rank() == comm.size() - 1 ? base + 1 : base;
    std::vector<float> data(count, 1.0f);
    std::string message;
    int named = -1;
    try {
      ringdp::allreduce(comm, std::span<float>(data), ReduceOp::Sum, Algorithm::Shm);
    } catch (const ringdp::MismatchError& e) {
      message = e.what();
      named = e.rank();
    }
    INFO(message);
    CHECK(all_ranks(named == comm.size() - 1 && message.find("count") != std::string::npos));
    CHECK(run_case<float>(comm, 5000, ReduceOp::Sum, Algorithm::Shm, Memory::Ordinary));
  }
}
