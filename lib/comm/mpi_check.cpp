#include "ringdp/detail/mpi_check.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "ringdp/comm/error.hpp"

namespace ringdp::detail {

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  std::string_view text(call);
  throw MpiError(std::string(text.substr(0, text.find('('))), code);
}

int checked_mpi_count(std::size_t count) {
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw InvalidArgument(fmt::format(
        "count {} does not fit in an MPI int count (max {}); split the message", count,
        std::numeric_limits<int>::max()));
  }
  return static_cast<int>(count);
}

}  // namespace ringdp::detail
