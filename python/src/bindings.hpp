#pragma once
// The parts of the ringdp extension module, each adding its functions and classes.

#include <pybind11/pybind11.h>

namespace ringdp::python {

namespace py = pybind11;

void bind_collectives(py::module_& m);
void bind_reducer(py::module_& m);
void bind_support(py::module_& m);
// Next: bind_shared_buffer(m), ringdp.SharedBuffer (a numpy array viewing ringdp's
// node-shared memory, reduced without copy-in), once the C++ SharedBuffer exists
// (collectives/, DESIGN.md "Node-local memory"): its own file, registered in module.cpp.

}  // namespace ringdp::python
