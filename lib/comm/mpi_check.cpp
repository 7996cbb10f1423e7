#include "ringdp/comm/mpi_check.hpp"

#include <fmt/format.h>

#include <limits>
#include <string>
#include <string_view>

#include "ringdp/error.hpp"

namespace ringdp {
namespace {

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(text, static_cast<std::size_t>(length));
}

}  // namespace

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  const std::string_view text(call);
  throw MpiError(std::string(text.substr(0, text.find('('))), code, mpi_error_string(code));
}

int checked_mpi_count(std::size_t count) {
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw InvalidArgument(fmt::format(
        "count {} does not fit in an MPI int count (max {}); split the message", count,
        std::numeric_limits<int>::max()));
  }
  return static_cast<int>(count);
}

}  // namespace ringdp
