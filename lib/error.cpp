#include "ringdp/error.hpp"

#include <fmt/format.h>

#include <atomic>
#include <utility>

namespace ringdp {
namespace {

std::atomic<int (*)() noexcept> rank_source{nullptr};

int calling_rank() noexcept {
  const auto source = rank_source.load(std::memory_order_acquire);
  return source != nullptr ? source() : -1;
}

std::string format_message(int rank, const std::string& cause) {
  if (rank < 0) return fmt::format("ringdp: {}", cause);
  return fmt::format("ringdp: rank {}: {}", rank, cause);
}

}  // namespace

namespace detail {
void set_error_rank_source(int (*source)() noexcept) noexcept {
  rank_source.store(source, std::memory_order_release);
}
}  // namespace detail

Error::Error(int rank, std::string cause, bool collective)
    : std::runtime_error(format_message(rank, cause)),
      rank_(rank),
      cause_(std::move(cause)),
      collective_(collective) {}

Error::Error(std::string cause) : Error(calling_rank(), std::move(cause)) {}

MpiError::MpiError(std::string routine, int code, const std::string& description)
    : Error(fmt::format("{} failed: {} (code {})", routine, description, code)),
      routine_(std::move(routine)),
      code_(code) {}

MpiError::MpiError(int rank, std::string cause, bool collective)
    : Error(rank, std::move(cause), collective) {}

const char* to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::Generic: return "error";
    case ErrorKind::Mpi: return "MPI error";
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::InvalidArgument: return "invalid argument";
    case ErrorKind::Mismatch: return "mismatch";
  }
  return "error";
}

void throw_error(ErrorKind kind, int rank, std::string cause, bool collective) {
  switch (kind) {
    case ErrorKind::Mpi: throw MpiError(rank, std::move(cause), collective);
    case ErrorKind::Io: throw IoError(rank, std::move(cause), collective);
    case ErrorKind::InvalidArgument: throw InvalidArgument(rank, std::move(cause), collective);
    case ErrorKind::Mismatch: throw MismatchError(rank, std::move(cause), collective);
    case ErrorKind::Generic: break;
  }
  throw Error(rank, std::move(cause), collective);
}

}  // namespace ringdp
