#include "mpi_test.hpp"

namespace ringdp::test {

bool all_ranks(bool ok, MPI_Comm comm) {
  int mine = ok ? 1 : 0;
  int all = 0;
  PMPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, comm);
  return all != 0;
}

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

std::uint64_t hash_bytes(const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

bool same_on_all_ranks(std::uint64_t hash, MPI_Comm comm) {
  std::uint64_t root = hash;
  MPI_Bcast(&root, 1, MPI_UINT64_T, 0, comm);
  return all_ranks(root == hash, comm);
}

}  // namespace ringdp::test
