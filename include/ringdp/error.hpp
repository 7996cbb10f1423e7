#pragma once
/// \file
/// ringdp's exceptions, at the bottom of the library: no MPI here, so that every layer
/// (nn included) can throw them. Every message names the rank it comes from and the cause:
/// "ringdp: rank 2: <cause>". The rank of the calling process is filled in by comm/ once
/// MPI is in use (see detail::set_error_rank_source); before that it is unknown (-1) and
/// the message reads "ringdp: <cause>".

#include <stdexcept>
#include <string>

namespace ringdp {

/// The class of an Error, so that an error agreed across ranks (agree(), agree_on()) is
/// thrown as the same type on every rank, and the C API returns the same code everywhere.
enum class ErrorKind {
  Generic,          ///< ringdp::Error itself
  Mpi,              ///< MpiError
  Io,               ///< IoError
  InvalidArgument,  ///< InvalidArgument
  Mismatch,         ///< MismatchError
};

/// Base of every exception ringdp throws.
class Error : public std::runtime_error {
 public:
  /// `rank` is the rank the cause belongs to (-1 when unknown); `collective` marks an error
  /// that every rank of a communicator throws together (see agree()).
  Error(int rank, std::string cause, bool collective = false);
  /// An error of the calling rank (its rank in MPI_COMM_WORLD once comm/ has registered
  /// it, -1 before).
  explicit Error(std::string cause);
  ~Error() override = default;
  Error(const Error&) = default;
  Error& operator=(const Error&) = default;

  /// The rank the cause belongs to, -1 when unknown.
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// The cause alone, without the "ringdp: rank N: " prefix.
  [[nodiscard]] const std::string& cause() const noexcept { return cause_; }
  /// True when every rank of the communicator throws this error together, so that no
  /// rank is left waiting and the job may end cleanly instead of aborting.
  [[nodiscard]] bool collective() const noexcept { return collective_; }
  /// The class of this error.
  [[nodiscard]] virtual ErrorKind kind() const noexcept { return ErrorKind::Generic; }

 private:
  int rank_;
  std::string cause_;
  bool collective_;
};

/// An MPI routine returned an error code.
class MpiError : public Error {
 public:
  /// `routine` failed with `code`; `description` is MPI's text for the code.
  MpiError(std::string routine, int code, const std::string& description);
  /// Another rank's MPI failure, agreed across ranks: routine() is empty and code() 0.
  MpiError(int rank, std::string cause, bool collective);
  [[nodiscard]] const std::string& routine() const noexcept { return routine_; }
  [[nodiscard]] int code() const noexcept { return code_; }
  [[nodiscard]] ErrorKind kind() const noexcept override { return ErrorKind::Mpi; }

 private:
  std::string routine_;
  int code_ = 0;
};

/// A file could not be read or written (HDF5, checkpoints, outputs).
class IoError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] ErrorKind kind() const noexcept override { return ErrorKind::Io; }
};

/// A caller passed an argument (or set a RINGDP_* variable to a value) ringdp cannot accept.
class InvalidArgument : public Error {
 public:
  using Error::Error;
  [[nodiscard]] ErrorKind kind() const noexcept override { return ErrorKind::InvalidArgument; }
};

/// Ranks that must agree did not: check mode found a collective called with different
/// arguments, or the ranks hold different values where they must hold the same.
class MismatchError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] ErrorKind kind() const noexcept override { return ErrorKind::Mismatch; }
};

/// The name of a kind: "error", "MPI error", "I/O error", "invalid argument", "mismatch".
[[nodiscard]] const char* to_string(ErrorKind kind) noexcept;

/// Throws the exception class of `kind` (MpiError without routine and code).
[[noreturn]] void throw_error(ErrorKind kind, int rank, std::string cause, bool collective);

namespace detail {
/// Where Error(std::string) takes the calling process's rank from. comm/ registers its
/// world_rank() when MPI comes into use (Environment, Communicator); nullptr: unknown.
/// Thread-safe.
void set_error_rank_source(int (*source)() noexcept) noexcept;
}  // namespace detail

}  // namespace ringdp
