// A deliberately failing fixture: registered with WILL_FAIL at 3 ranks. If the harness
// ever stops reporting a failure that happens on one rank only, this test turns red.
#include <catch2/catch.hpp>

#include "mpi_test.hpp"

TEST_CASE("fails on rank 2 only") {
  const int rank = ringdp::test::world_rank();
  CHECK(rank != 2);  // rank-local on purpose: the other ranks pass this test case
}
