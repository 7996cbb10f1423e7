// The API around the algorithms: names, compile-time type constraints, argument errors,
// Auto's choice and the RINGDP_ALGORITHM override.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/error.hpp"

using ringdp::Algorithm;
using ringdp::ReduceOp;
using ringdp::test::all_ranks;

namespace {

template <class T>
concept CanAllreduce = requires(const ringdp::Communicator& c, std::span<T> s) {
  ringdp::allreduce(c, s);
};
template <class T>
concept CanAverage = requires(const ringdp::Communicator& c, std::span<T> s) {
  ringdp::average(c, s);
};

// Only the four element types compile; Average is a compile error for integers.
static_assert(CanAllreduce<float> && CanAllreduce<double> && CanAllreduce<std::int32_t> &&
              CanAllreduce<std::int64_t>);
static_assert(!CanAllreduce<char> && !CanAllreduce<std::uint32_t> && !CanAllreduce<long double>);
static_assert(CanAverage<float> && CanAverage<double>);
static_assert(!CanAverage<std::int32_t> && !CanAverage<std::int64_t>);

}  // namespace

TEST_CASE("algorithm and op names round-trip", "[api]") {
  for (Algorithm a : {Algorithm::Auto, Algorithm::Ring, Algorithm::RecursiveDoubling,
                      Algorithm::Mpi, Algorithm::ParameterServer}) {
    CHECK(ringdp::parse_algorithm(ringdp::to_string(a)) == a);
  }
  CHECK(std::string(ringdp::to_string(Algorithm::RecursiveDoubling)) == "rd");
  CHECK(std::string(ringdp::to_string(Algorithm::ParameterServer)) == "ps");
  for (ReduceOp op :
       {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Min, ReduceOp::Max, ReduceOp::Product}) {
    CHECK(ringdp::parse_reduce_op(ringdp::to_string(op)) == op);
  }
  CHECK_THROWS_AS(ringdp::parse_algorithm("fastest"), ringdp::InvalidArgument);
  CHECK_THROWS_AS(ringdp::parse_reduce_op("mean"), ringdp::InvalidArgument);
}

TEST_CASE("Average on integers and unknown enumerators throw on every rank", "[api]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::vector<std::int32_t> ints(10, 1);
  bool threw = false;
  try {
    ringdp::allreduce(comm, std::span<std::int32_t>(ints), ReduceOp::Average);
  } catch (const ringdp::InvalidArgument& e) {
    threw = std::string(e.what()).find("floating-point") != std::string::npos;
  }
  CHECK(all_ranks(threw));

  std::vector<float> data(10, 1.0f);
  threw = false;
  try {
    ringdp::allreduce(comm, std::span<float>(data), ReduceOp::Sum, static_cast<Algorithm>(42));
  } catch (const ringdp::InvalidArgument&) {
    threw = true;
  }
  CHECK(all_ranks(threw));
  threw = false;
  try {
    ringdp::allreduce(comm, std::span<float>(data), static_cast<ReduceOp>(42), Algorithm::Ring);
  } catch (const ringdp::InvalidArgument&) {
    threw = true;
  }
  CHECK(all_ranks(threw));
}

TEST_CASE("Auto never picks the parameter server and honours RINGDP_ALGORITHM", "[api]") {
  for (int ranks = 1; ranks <= 64; ranks *= 2) {
    for (std::size_t bytes = 1; bytes <= (std::size_t{1} << 30); bytes *= 4) {
      const Algorithm a = ringdp::select_algorithm(bytes, ranks);
      CHECK((a != Algorithm::ParameterServer && a != Algorithm::Auto));
    }
  }
  // Explicit choices are never overridden; Auto follows the environment when it is set
  // (the test is registered once with RINGDP_ALGORITHM=rd).
  CHECK(ringdp::resolve_algorithm(Algorithm::Ring, 8, 4) == Algorithm::Ring);
  const char* env = std::getenv("RINGDP_ALGORITHM");
  if (env != nullptr && std::string(env) == "rd") {
    CHECK(ringdp::resolve_algorithm(Algorithm::Auto, 1 << 30, 4) == Algorithm::RecursiveDoubling);
  } else {
    CHECK(ringdp::resolve_algorithm(Algorithm::Auto, 1 << 30, 4) ==
          ringdp::select_algorithm(1 << 30, 4));
  }
}

TEST_CASE("average() averages floating-point data", "[api]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::vector<double> data(37, 0.0);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = double(i) + comm.rank();
  ringdp::average(comm, std::span<double>(data));
  bool ok = true;
  // Exact: small integers and halves, whatever the summation order.
  for (std::size_t i = 0; i < data.size(); ++i)
    ok = ok && data[i] == double(i) + (comm.size() - 1) / 2.0;
  CHECK(all_ranks(ok));
}
