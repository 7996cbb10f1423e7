// ringdp's duplicate cached on a caller's communicator (ringdp/comm/communicator_cache.hpp):
// one per communicator, reused, never inherited by a duplicate, freed with its communicator.

#include <mpi.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator_cache.hpp"

using ringdp::test::all_ranks;

namespace {

// The highest Fortran handle (in Open MPI: the slot in the table of live communicators,
// lowest free slot first) of a few communicators made and freed together. If communicators
// leaked in between, a later probe lands higher.
int probe_slot() {
  constexpr int kProbes = 4;
  MPI_Comm probes[kProbes];
  int highest = -1;
  for (MPI_Comm& p : probes) {
    MPI_Comm_dup(MPI_COMM_WORLD, &p);
    highest = std::max(highest, static_cast<int>(MPI_Comm_c2f(p)));
  }
  for (MPI_Comm& p : probes) MPI_Comm_free(&p);
  return highest;
}

}  // namespace

TEST_CASE("cached_communicator makes one duplicate per communicator and reuses it") {
  const ringdp::Communicator& first = ringdp::cached_communicator(MPI_COMM_WORLD);
  const ringdp::Communicator& again = ringdp::cached_communicator(MPI_COMM_WORLD);
  int relation = MPI_UNEQUAL;
  MPI_Comm_compare(first.native(), MPI_COMM_WORLD, &relation);
  CHECK(all_ranks(&first == &again && relation == MPI_CONGRUENT));
  CHECK(all_ranks(first.size() == ringdp::test::world_size() &&
                  first.rank() == ringdp::test::world_rank()));

  // A duplicate of a communicator carrying one does not inherit it: it gets its own.
  MPI_Comm user = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &user);
  const ringdp::Communicator& own = ringdp::cached_communicator(user);
  CHECK(all_ranks(&own != &first && own.native() != first.native()));
  MPI_Comm_free(&user);

  const ringdp::Communicator& self = ringdp::cached_communicator(MPI_COMM_SELF);
  CHECK(all_ranks(self.size() == 1 && &self != &first));
}

TEST_CASE("freeing a communicator frees its cached duplicate") {
  // Each cached Communicator holds two MPI communicators (its duplicate and the stall
  // inspector's channel): 50 leaked ones would move the probe up by about 100 slots.
  const int before = probe_slot();
  for (int i = 0; i < 50; ++i) {
    MPI_Comm user = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, ringdp::test::world_rank() % 2, 0, &user);
    (void)ringdp::cached_communicator(user);
    MPI_Comm_free(&user);
  }
  const int after = probe_slot();
  INFO("probe slot before " << before << ", after " << after);
  CHECK(all_ranks(after <= before + 2));
}
