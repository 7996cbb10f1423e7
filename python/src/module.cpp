// The extension module ringdp._ringdp; the package ringdp (python/ringdp/__init__.py)
// re-exports it.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings.hpp"
#include "comm.hpp"
#include "errors.hpp"
#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/comm/communicator_cache.hpp"
#include "ringdp/version.hpp"

namespace ringdp::python {
namespace {

// What a Python exception brings to ringdp.agree(): its class and message.
void record_exception(ArgumentCheck& check, py::handle error, py::handle ringdp_error) {
  // An error ringdp raised carries its cause without the "ringdp: rank N: " prefix, which
  // the agreement adds again (naming this rank).
  const std::string message =
      py::str(py::hasattr(error, "cause") ? error.attr("cause") : error).cast<std::string>();
  if (py::isinstance(error, ringdp_error)) {
    // One of ringdp's classes: sent as its kind (its message already names its rank).
    const py::module_ module = py::module_::import("ringdp._ringdp");
    ErrorKind kind = ErrorKind::Generic;
    if (py::isinstance(error, module.attr("MpiError"))) kind = ErrorKind::Mpi;
    if (py::isinstance(error, module.attr("IoError"))) kind = ErrorKind::Io;
    if (py::isinstance(error, module.attr("InvalidArgument"))) kind = ErrorKind::InvalidArgument;
    if (py::isinstance(error, module.attr("MismatchError"))) kind = ErrorKind::Mismatch;
    check.record(PyClass::Ringdp, Failure{kind, message});
  } else if (py::isinstance(error, py::handle(PyExc_TypeError))) {
    check.record(PyClass::Type, Failure{ErrorKind::InvalidArgument, message});
  } else if (py::isinstance(error, py::handle(PyExc_ValueError))) {
    check.record(PyClass::Value, Failure{ErrorKind::InvalidArgument, message});
  } else if (py::isinstance(error, py::handle(PyExc_BaseException))) {
    const std::string name = py::str(py::type::handle_of(error).attr("__name__"));
    check.record(PyClass::Ringdp, Failure{ErrorKind::Generic, name + ": " + message});
  } else {
    check.record(PyClass::Ringdp, Failure{ErrorKind::Generic, message});
  }
}

void agree_py(const py::object& error, const py::object& comm) {
  const Communicator& c = communicator(comm);
  ArgumentCheck check;
  if (!error.is_none()) {
    const py::module_ module = py::module_::import("ringdp._ringdp");
    record_exception(check, error, module.attr("Error"));
  }
  const py::gil_scoped_release released;
  check.agree(c);
}

}  // namespace

void bind_support(py::module_& m) {
  m.def("agree", &agree_py, py::arg("error") = py::none(), py::arg("comm") = py::none(),
        R"(Collective: returns on every rank when every rank passed error=None; otherwise raises
on every rank the error of the lowest rank that passed one (an exception or a message; its
text names that rank): a ValueError or TypeError as such, one of ringdp's errors as its
class, anything else as ringdp.Error. For checks that can differ between ranks (a file, a
shape) before the ranks go on together.)");
  m.def(
      "set_check_mode",
      [](bool on, const py::object& comm) {
        // The cache owns a (non-const) Communicator that is ringdp's alone: its check
        // mode is the caller's to set.
        const_cast<Communicator&>(communicator(comm)).set_check_mode(on);
      },
      py::arg("on"), py::arg("comm") = py::none(),
      R"(Turns check mode on or off for ringdp's collectives on `comm` (set the same on every
rank). In check mode every collective first verifies that all ranks passed the same count,
dtype, op and algorithm, and raises ringdp.MismatchError on every rank, naming the rank that
differs, when one did not. Costs one small reduction per call. RINGDP_CHECK=1 turns it on
for every communicator.)");
  m.def(
      "check_mode", [](const py::object& comm) { return communicator(comm).check_mode(); },
      py::arg("comm") = py::none(), "Whether check mode is on for `comm`.");
  m.def("default_bucket_bytes", &default_bucket_bytes,
        "Bucket size of gradient reducers: RINGDP_BUCKET_BYTES, or ringdp's default.");
  m.def("default_fusion_bytes", &default_fusion_bytes,
        "Fusion limit of gradient reducers: RINGDP_FUSION_BYTES, or ringdp's default.");
  m.def("_cached_communicator_count", &cached_communicator_count,
        "How many communicators carry a cached ringdp duplicate (for tests).");
}

}  // namespace ringdp::python

PYBIND11_MODULE(_ringdp, m) {
  namespace rp = ringdp::python;
  m.doc() = "ringdp's collectives for mpi4py and numpy (see the package ringdp).";
  m.attr("__version__") = RINGDP_VERSION_STRING;
  m.attr("git_hash") = RINGDP_GIT_HASH;
  rp::load_mpi4py();
  rp::register_errors(m);
  rp::bind_collectives(m);
  rp::bind_reducer(m);
  rp::bind_shared_buffer(m);
  rp::bind_support(m);
}
