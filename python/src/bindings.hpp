#pragma once
// The parts of the ringdp extension module, each adding its functions and classes.

#include <pybind11/pybind11.h>

namespace ringdp::python {

namespace py = pybind11;

void bind_collectives(py::module_& m);
void bind_reducer(py::module_& m);
void bind_support(py::module_& m);
/// ringdp.SharedBuffer: numpy views of ringdp's node-shared memory, reduced without copy-in.
void bind_shared_buffer(py::module_& m);

}  // namespace ringdp::python
