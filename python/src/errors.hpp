#pragma once
// Errors of the Python binding: ringdp's exception classes as Python classes, and the
// agreement of argument checks, so that an argument one rank rejects raises the same
// exception on every rank instead of leaving the others waiting in the collective.

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"

namespace ringdp::python {

namespace py = pybind11;

/// The Python class an argument error is raised as. Ringdp: the class of its ErrorKind
/// (ringdp.Error and subclasses).
enum class PyClass : std::int32_t { Ringdp = 0, Value = 1, Type = 2 };

/// An argument this rank rejects, before any communication: becomes a ValueError or a
/// TypeError on every rank once agreed (ArgumentCheck).
struct ArgumentError : std::runtime_error {
  ArgumentError(PyClass cls, const std::string& message) : std::runtime_error(message), cls(cls) {}
  PyClass cls;
};

/// An argument error agreed across ranks, to be raised as a Python ValueError or TypeError
/// (the ringdp::Error it was agreed as is rethrown as is for ringdp's own classes).
struct AgreedArgumentError : std::runtime_error {
  AgreedArgumentError(PyClass cls, const ringdp::Error& error)
      : std::runtime_error(error.what()), cls(cls), rank(error.rank()), cause(error.cause()) {}
  PyClass cls;
  int rank;
  std::string cause;
};

/// Collects this rank's argument failures (the first one counts), then agrees on them.
class ArgumentCheck {
 public:
  /// Runs `fn` (with the GIL held); an ArgumentError or a ringdp::Error it throws is
  /// recorded, unless a failure is recorded already.
  template <class Fn>
  void run(Fn&& fn) {
    try {
      fn();
    } catch (const ArgumentError& e) {
      record(e.cls, Failure{ErrorKind::InvalidArgument, e.what()});
    } catch (const ringdp::Error& e) {
      record(PyClass::Ringdp, Failure{e.kind(), e.cause()});
    }
  }
  /// Records a failure (the first one counts).
  void record(PyClass cls, Failure failure);
  /// True when nothing failed on this rank.
  [[nodiscard]] bool ok() const noexcept { return !failure_.has_value(); }

  /// Collective over `comm`, with the GIL released: returns on every rank when no rank
  /// failed; otherwise every rank throws the lowest failing rank's error (its message
  /// names that rank), as the same class: AgreedArgumentError for ValueError and
  /// TypeError, the agreed ringdp::Error for ringdp's own classes. One small reduction.
  void agree(const Communicator& comm) const;

 private:
  std::optional<Failure> failure_;
  PyClass cls_ = PyClass::Ringdp;
};

/// Creates ringdp.Error and its subclasses in `module` and registers the translation of
/// ringdp::Error (by kind) and AgreedArgumentError. Raised instances carry `rank` (the
/// rank the cause belongs to, -1 when unknown), `cause` (the message without the
/// "ringdp: rank N: " prefix) and `collective` (True when every rank of the communicator
/// raises it together).
void register_errors(py::module_& module);

}  // namespace ringdp::python
