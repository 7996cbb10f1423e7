#pragma once
// mpi4py communicators as MPI_Comm handles, and ringdp's cached duplicate of each.

#include <mpi.h>
#include <pybind11/pybind11.h>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::python {

namespace py = pybind11;

/// Imports mpi4py.MPI (which initialises MPI if nothing has yet) and keeps what the
/// binding needs from it. Called once, when the module is imported.
void load_mpi4py();

/// The MPI_Comm of `comm`: MPI.COMM_WORLD when None, else an mpi4py intracommunicator
/// other than MPI.COMM_NULL. Throws ArgumentError (TypeError for anything else, ValueError
/// for COMM_NULL): not agreed, since there is no communicator to agree on. GIL held.
[[nodiscard]] MPI_Comm mpi_comm(py::handle comm);

/// ringdp's duplicate of `comm` (ringdp::cached_communicator: created, collectively, at the
/// first call on a communicator; freed with it). Releases the GIL while it calls MPI.
[[nodiscard]] const Communicator& communicator(py::handle comm);

}  // namespace ringdp::python
