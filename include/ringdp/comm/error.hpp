#pragma once
/// \file
/// ringdp's exceptions. Every message names the rank it comes from and the cause:
/// "ringdp: rank 2: <cause>".

#include <stdexcept>
#include <string>

namespace ringdp {

/// Base of every exception ringdp throws.
class Error : public std::runtime_error {
 public:
  /// `rank` is the rank the cause belongs to (-1 when unknown); `collective` marks an error
  /// that every rank of a communicator throws together (see agree()).
  Error(int rank, std::string cause, bool collective = false);
  /// An error of the calling rank (its rank in MPI_COMM_WORLD, or -1 before MPI_Init).
  explicit Error(std::string cause);

  /// The rank the cause belongs to, -1 when unknown.
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// The cause alone, without the "ringdp: rank N: " prefix.
  [[nodiscard]] const std::string& cause() const noexcept { return cause_; }
  /// True when every rank of the communicator throws this error together, so that no
  /// rank is left waiting and the job may end cleanly instead of aborting.
  [[nodiscard]] bool collective() const noexcept { return collective_; }

 private:
  int rank_;
  std::string cause_;
  bool collective_;
};

/// An MPI routine returned an error code.
class MpiError : public Error {
 public:
  MpiError(std::string routine, int code);
  [[nodiscard]] const std::string& routine() const noexcept { return routine_; }
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  std::string routine_;
  int code_;
};

/// A file could not be read or written (HDF5, checkpoints, outputs).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A caller passed an argument ringdp cannot accept.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// This process's rank in MPI_COMM_WORLD, or -1 when MPI is not initialised (or finalised).
[[nodiscard]] int world_rank() noexcept;

}  // namespace ringdp
