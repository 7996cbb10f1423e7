#include "comm.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "errors.hpp"
#include "ringdp/comm/communicator_cache.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"

namespace ringdp::python {
namespace {

// From mpi4py.MPI, kept for the life of the interpreter (never released: released at exit
// they could outlive it).
struct Mpi4py {
  PyObject* comm_world = nullptr;
  PyObject* comm = nullptr;
  PyObject* intracomm = nullptr;
  PyObject* handleof = nullptr;
};
Mpi4py mpi4py;

// mpi4py's MPI._handleof(comm) is the MPI_Comm value as a Python int: in Open MPI a
// pointer, in MPICH an int. Taking the handle this way needs none of mpi4py's C headers
// (the alternative, MPI._addressof, gives the address of the handle inside the Python
// object, which must then stay alive and unmoved).
template <class Handle>
Handle from_handle(py::handle value) {
  if constexpr (std::is_pointer_v<Handle>) {
    return reinterpret_cast<Handle>(value.cast<std::uintptr_t>());
  } else {
    return static_cast<Handle>(value.cast<long long>());
  }
}

}  // namespace

void load_mpi4py() {
  const py::module_ mpi = py::module_::import("mpi4py.MPI");
  mpi4py.comm_world = py::object(mpi.attr("COMM_WORLD")).release().ptr();
  mpi4py.comm = py::object(mpi.attr("Comm")).release().ptr();
  mpi4py.intracomm = py::object(mpi.attr("Intracomm")).release().ptr();
  mpi4py.handleof = py::object(mpi.attr("_handleof")).release().ptr();
}

MPI_Comm mpi_comm(py::handle comm) {
  if (!Environment::initialized() || Environment::finalized()) {
    throw ringdp::Error(
        "MPI is not initialised, or already finalised (mpi4py initialises it "
        "when imported unless mpi4py.rc.initialize is False)");
  }
  const py::handle object = comm.is_none() ? py::handle(mpi4py.comm_world) : comm;
  if (py::isinstance(object, py::handle(mpi4py.comm))) {
    const auto handle = from_handle<MPI_Comm>(py::handle(mpi4py.handleof)(object));
    // MPI.COMM_NULL is an MPI.Comm, not an Intracomm: named as what it is.
    if (handle == MPI_COMM_NULL) throw ArgumentError(PyClass::Value, "comm is MPI.COMM_NULL");
    if (py::isinstance(object, py::handle(mpi4py.intracomm))) return handle;
  }
  throw ArgumentError(
      PyClass::Type,
      fmt::format("comm must be an mpi4py intracommunicator (mpi4py.MPI.Intracomm), got {}",
                  py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>()));
}

const Communicator& communicator(py::handle comm) {
  const MPI_Comm handle = mpi_comm(comm);
  const py::gil_scoped_release released;
  return cached_communicator(handle);
}

}  // namespace ringdp::python
