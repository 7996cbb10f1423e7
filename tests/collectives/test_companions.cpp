// broadcast, allgather and reduce_scatter against MPI_Bcast, MPI_Allgather and
// MPI_Reduce_scatter_block on the same random inputs.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "mpi_test.hpp"
#include "reference.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/error.hpp"
#include "ringdp/testing.hpp"

using ringdp::ReduceOp;
using ringdp::test::all_ranks;

namespace {

std::vector<std::size_t> counts() {
  const auto n = static_cast<std::size_t>(ringdp::test::world_size());
  return {0, 1, 2, n - 1, n, n + 1, 1009};
}

template <class T>
bool check_broadcast(const ringdp::Communicator& comm, std::size_t count, std::uint64_t seed) {
  bool ok = true;
  for (int root = 0; root < comm.size(); ++root) {
    auto mine = ringdp::test::random_input<T>(count, ReduceOp::Sum, seed + root);
    auto want = mine;
    MPI_Bcast(want.data(), static_cast<int>(count), ringdp::mpi_datatype<T>(), root,
              MPI_COMM_WORLD);
    ringdp::broadcast(comm, std::span<T>(mine), root);
    ok = ok && mine == want;
  }
  return all_ranks(ok);
}

template <class T>
bool check_allgather(const ringdp::Communicator& comm, std::size_t count, std::uint64_t seed,
                     ringdp::Algorithm algorithm) {
  const auto mine = ringdp::test::random_input<T>(count, ReduceOp::Sum, seed);
  std::vector<T> want(count * comm.size());
  std::vector<T> got(count * comm.size());
  MPI_Allgather(mine.data(), static_cast<int>(count), ringdp::mpi_datatype<T>(), want.data(),
                static_cast<int>(count), ringdp::mpi_datatype<T>(), MPI_COMM_WORLD);
  ringdp::allgather(comm, std::span<const T>(mine), std::span<T>(got), algorithm);
  // In place too: `mine` already in this rank's block of the output.
  std::vector<T> in_place(count * comm.size());
  std::copy(mine.begin(), mine.end(),
            in_place.begin() + static_cast<std::ptrdiff_t>(count * comm.rank()));
  ringdp::allgather(comm, std::span<const T>(in_place.data() + count * comm.rank(), count),
                    std::span<T>(in_place), algorithm);
  return all_ranks(got == want && in_place == want);
}

template <class T>
bool check_reduce_scatter(const ringdp::Communicator& comm, std::size_t block, ReduceOp op,
                          std::uint64_t seed, ringdp::Algorithm algorithm) {
  const auto data = ringdp::test::random_input<T>(block * comm.size(), op, seed);
  // The reference block: this rank's block of the full MPI_Allreduce, the same values
  // MPI_Reduce_scatter_block returns, with the same rounding bound.
  const auto full = ringdp::test::mpi_reference(data, op);
  std::vector<T> want(full.begin() + static_cast<std::ptrdiff_t>(block * comm.rank()),
                      full.begin() + static_cast<std::ptrdiff_t>(block * (comm.rank() + 1)));
  std::vector<T> got(block);
  ringdp::reduce_scatter(comm, std::span<const T>(data), std::span<T>(got), op, algorithm);
  std::size_t wrong = 0;
  if constexpr (std::is_integral_v<T>) {
    // Exact for integers (count_wrong does not look at the inputs then).
    wrong = ringdp::test::count_wrong<T>(got, want, data, op);
  } else {
    // Floating bound: |got - want| <= 2 (n-1) eps sum_r |data_r|, computed per element of
    // this rank's block from the full per-rank inputs.
    std::vector<double> magnitude(data.size());
    std::vector<double> total(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) magnitude[i] = std::abs(double(data[i]));
    MPI_Allreduce(magnitude.data(), total.data(), static_cast<int>(data.size()), MPI_DOUBLE,
                  MPI_SUM, MPI_COMM_WORLD);
    const double eps = std::numeric_limits<T>::epsilon();
    const int n = comm.size();
    for (std::size_t i = 0; i < block; ++i) {
      const double t = total[block * comm.rank() + i];
      const double ref = want[i];
      double bound = 0;
      if (op == ReduceOp::Sum) bound = 2.0 * (n - 1) * eps * t;
      if (op == ReduceOp::Average) bound = 2.0 * (n - 1) * eps * t / n + eps * std::abs(ref);
      if (op == ReduceOp::Product) bound = 2.0 * (n - 1) * eps * std::abs(ref);
      if (!(std::abs(double(got[i]) - ref) <= bound)) ++wrong;
    }
  }
  return all_ranks(wrong == 0);
}

// The algorithms reduce_scatter and allgather run here: ring, mpi, auto, and shm when every
// rank shares one node.
std::vector<ringdp::Algorithm> block_algorithms(const ringdp::Communicator& comm) {
  std::vector<ringdp::Algorithm> algorithms = {ringdp::Algorithm::Auto, ringdp::Algorithm::Ring,
                                               ringdp::Algorithm::Mpi};
  if (comm.node_layout().one_node()) algorithms.push_back(ringdp::Algorithm::Shm);
  return algorithms;
}

}  // namespace

TEMPLATE_TEST_CASE("broadcast, allgather and reduce_scatter match MPI", "[companions]", float,
                   double, std::int32_t, std::int64_t) {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::uint64_t seed = 100;
  // Once as is, once with a 7-element MPI count limit so large-message splitting runs.
  for (std::size_t limit : {std::size_t{0}, std::size_t{7}}) {
    ringdp::testing::set_max_mpi_count(limit);
    for (std::size_t count : counts()) {
      CHECK(check_broadcast<TestType>(comm, count, seed++));
      for (ringdp::Algorithm algorithm : block_algorithms(comm)) {
        INFO("algorithm " << ringdp::to_string(algorithm) << ", count " << count);
        CHECK(check_allgather<TestType>(comm, count, seed++, algorithm));
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Min, ReduceOp::Max, ReduceOp::Product}) {
          CHECK(check_reduce_scatter<TestType>(comm, count, op, seed++, algorithm));
        }
        if constexpr (std::is_floating_point_v<TestType>) {
          CHECK(check_reduce_scatter<TestType>(comm, count, ReduceOp::Average, seed++, algorithm));
        }
      }
    }
  }
  ringdp::testing::set_max_mpi_count(0);
}

TEST_CASE("reduce_scatter and allgather of large blocks, every algorithm", "[companions]") {
  // Blocks over several shm rounds and ring segments.
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::uint64_t seed = 900;
  for (ringdp::Algorithm algorithm : block_algorithms(comm)) {
    INFO("algorithm " << ringdp::to_string(algorithm));
    CHECK(check_allgather<float>(comm, 200003, seed++, algorithm));
    CHECK(check_reduce_scatter<float>(comm, 200003, ReduceOp::Sum, seed++, algorithm));
    CHECK(check_reduce_scatter<std::int64_t>(comm, 100003, ReduceOp::Max, seed++, algorithm));
  }
}

TEST_CASE("companions reject inconsistent sizes on every rank", "[companions]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::vector<float> mine(3);
  std::vector<float> too_small(3 * comm.size() - 1);
  bool threw = false;
  try {
    ringdp::allgather(comm, std::span<const float>(mine), std::span<float>(too_small));
  } catch (const ringdp::InvalidArgument&) {
    threw = true;
  }
  CHECK(all_ranks(threw));
  threw = false;
  std::vector<float> data(5);
  try {
    ringdp::broadcast(comm, std::span<float>(data), comm.size());
  } catch (const ringdp::InvalidArgument&) {
    threw = true;
  }
  CHECK(all_ranks(threw));
}
