#include "ringdp/comm/error.hpp"

#include <fmt/format.h>
#include <mpi.h>

namespace ringdp {
namespace {

std::string format_message(int rank, const std::string& cause) {
  if (rank < 0) return fmt::format("ringdp: {}", cause);
  return fmt::format("ringdp: rank {}: {}", rank, cause);
}

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(text, static_cast<std::size_t>(length));
}

}  // namespace

int world_rank() noexcept {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

Error::Error(int rank, std::string cause, bool collective)
    : std::runtime_error(format_message(rank, cause)),
      rank_(rank),
      cause_(std::move(cause)),
      collective_(collective) {}

Error::Error(std::string cause) : Error(world_rank(), std::move(cause)) {}

MpiError::MpiError(std::string routine, int code)
    : Error(fmt::format("{} failed: {} (code {})", routine, mpi_error_string(code), code)),
      routine_(std::move(routine)),
      code_(code) {}

}  // namespace ringdp
