#include "errors.hpp"

#include <Python.h>

#include <span>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/error.hpp"

namespace ringdp::python {
namespace {

// The classes live as long as the interpreter: held without reference counting by the
// binding, so that nothing is released after the interpreter has gone.
struct Classes {
  PyObject* error = nullptr;
  PyObject* mpi = nullptr;
  PyObject* io = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* mismatch = nullptr;
};
Classes classes;

PyObject* class_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Mpi:
      return classes.mpi;
    case ErrorKind::Io:
      return classes.io;
    case ErrorKind::InvalidArgument:
      return classes.invalid_argument;
    case ErrorKind::Mismatch:
      return classes.mismatch;
    case ErrorKind::Generic:
      break;
  }
  return classes.error;
}

// Raises an instance of `cls` with `message`, `rank`, `cause` and `collective` set.
void raise(PyObject* cls, const char* message, int rank, const std::string& cause,
           bool collective) {
  PyObject* instance = PyObject_CallFunction(cls, "s", message);
  if (instance == nullptr) return;  // the call set its own error
  PyObject* rank_value = PyLong_FromLong(rank);
  if (rank_value != nullptr) {
    PyObject_SetAttrString(instance, "rank", rank_value);
    Py_DECREF(rank_value);
  }
  PyObject* cause_value =
      PyUnicode_FromStringAndSize(cause.data(), static_cast<Py_ssize_t>(cause.size()));
  if (cause_value != nullptr) {
    PyObject_SetAttrString(instance, "cause", cause_value);
    Py_DECREF(cause_value);
  }
  PyObject_SetAttrString(instance, "collective", collective ? Py_True : Py_False);
  PyErr_SetObject(cls, instance);
  Py_DECREF(instance);
}

PyObject* new_class(py::module_& module, const char* name, const char* doc, PyObject* bases) {
  const std::string full = std::string("ringdp.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases, nullptr);
  if (cls == nullptr) throw py::error_already_set();
  module.add_object(name, py::handle(cls));  // the module's reference; ours is never dropped
  return cls;
}

}  // namespace

void ArgumentCheck::record(PyClass cls, Failure failure) {
  if (failure_) return;
  cls_ = cls;
  failure_ = std::move(failure);
}

void ArgumentCheck::agree(const Communicator& comm) const {
  try {
    ringdp::agree(comm, failure_);
  } catch (const ringdp::Error& e) {
    if (!e.collective()) throw;  // the agreement itself failed (MPI): not agreed
    // Every rank throws the lowest failing rank's error; only that rank knows which Python
    // class it was. One more small message, on this failure path only.
    auto cls = static_cast<std::int32_t>(comm.rank() == e.rank() ? cls_ : PyClass::Ringdp);
    broadcast(comm, std::span<std::int32_t>(&cls, 1), e.rank());
    if (static_cast<PyClass>(cls) == PyClass::Ringdp) throw;
    throw AgreedArgumentError(static_cast<PyClass>(cls), e);
  }
}

void register_errors(py::module_& module) {
  classes.error = new_class(
      module, "Error",
      "Base of ringdp's errors (a RuntimeError). The message names the rank the cause belongs "
      "to; `rank` holds it (-1 when unknown) and `collective` is True when every rank of the "
      "communicator raises the error together.",
      PyExc_RuntimeError);
  classes.mpi = new_class(module, "MpiError", "An MPI call failed.", classes.error);
  classes.io = new_class(module, "IoError", "A file could not be read or written.", classes.error);
  py::tuple invalid_bases = py::make_tuple(py::handle(classes.error), py::handle(PyExc_ValueError));
  classes.invalid_argument =
      new_class(module, "InvalidArgument",
                "An argument (or a RINGDP_* variable) ringdp cannot accept; also a ValueError.",
                invalid_bases.ptr());
  classes.mismatch = new_class(
      module, "MismatchError",
      "Ranks that must agree did not: check mode found a collective called with different "
      "arguments on different ranks.",
      classes.error);

  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const ringdp::Error& e) {
      raise(class_of(e.kind()), e.what(), e.rank(), e.cause(), e.collective());
    } catch (const AgreedArgumentError& e) {
      raise(e.cls == PyClass::Type ? PyExc_TypeError : PyExc_ValueError, e.what(), e.rank, e.cause,
            true);
    } catch (const ArgumentError& e) {
      // Not agreed (there was no communicator to agree on): this rank only.
      raise(e.cls == PyClass::Type ? PyExc_TypeError : PyExc_ValueError, e.what(), -1, e.what(),
            false);
    }
  });
}

}  // namespace ringdp::python
