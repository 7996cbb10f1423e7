// ringdp.allreduce, broadcast, allgather and reduce_scatter. Each call: find ringdp's
// duplicate of the communicator, check the arguments (GIL held), then with the GIL
// released agree on the checks (so that an argument one rank rejects raises on every rank
// instead of leaving the others waiting) and run ringdp's collective.

#include "ringdp/collectives/collectives.hpp"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "comm.hpp"
#include "errors.hpp"

namespace ringdp::python {
namespace {

py::object allreduce_py(py::object array, const std::string& op, const std::string& algorithm,
                        py::object comm) {
  const Communicator& c = communicator(comm);
  ArgumentCheck check;
  ArrayView view;
  ReduceOp reduce_op = ReduceOp::Sum;
  Algorithm chosen = Algorithm::Auto;
  check.run([&] {
    view = array_view(array, Access::Write, "allreduce: array");
    reduce_op = parse_reduce_op(op);
    chosen = parse_algorithm(algorithm);
    check_op_supports(reduce_op, view.type);
  });
  {
    const py::gil_scoped_release released;
    check.agree(c);
    with_type(view.type,
              [&](auto tag) { allreduce(c, view.span<decltype(tag)>(), reduce_op, chosen); });
  }
  return array;
}

py::object broadcast_py(py::object array, int root, py::object comm) {
  const Communicator& c = communicator(comm);
  ArgumentCheck check;
  ArrayView view;
  check.run([&] {
    view = array_view(array, Access::Write, "broadcast: array");
    if (root < 0 || root >= c.size()) {
      throw InvalidArgument(fmt::format(
          "broadcast: root {} is not a rank of a {}-rank communicator", root, c.size()));
    }
  });
  {
    const py::gil_scoped_release released;
    check.agree(c);
    with_type(view.type, [&](auto tag) { broadcast(c, view.span<decltype(tag)>(), root); });
  }
  return array;
}

// The shape of allgather's result: one block per rank, each of the input's shape.
std::vector<py::ssize_t> gathered_shape(const py::array& array, int ranks) {
  std::vector<py::ssize_t> shape{ranks};
  for (py::ssize_t d = 0; d < array.ndim(); ++d) shape.push_back(array.shape(d));
  return shape;
}

py::object allgather_py(py::object array, py::object out, py::object comm) {
  const Communicator& c = communicator(comm);
  const auto ranks = static_cast<std::size_t>(c.size());
  ArgumentCheck check;
  ArrayView mine;
  ArrayView all;
  check.run([&] {
    mine = array_view(array, Access::Read, "allgather: array");
    if (out.is_none()) {
      out =
          new_array(mine.type, gathered_shape(py::reinterpret_borrow<py::array>(array), c.size()));
    }
    all = array_view(out, Access::Write, "allgather: out");
    if (all.type != mine.type) {
      throw ArgumentError(PyClass::Type,
                          fmt::format("allgather: out has dtype {}, array has dtype {}",
                                      to_string(all.type), to_string(mine.type)));
    }
    if (all.count != mine.count * ranks) {
      throw ArgumentError(PyClass::Value,
                          fmt::format("allgather: out has {} elements, expected {} ({} per "
                                      "rank x {} ranks)",
                                      all.count, mine.count * ranks, mine.count, ranks));
    }
    // The array may be this rank's own block of out (gathered in place), nothing else.
    const ArrayView own{static_cast<std::byte*>(all.data) + c.rank() * mine.bytes(), mine.count,
                        mine.type};
    if (overlaps(mine, all) && own.data != mine.data) {
      throw ArgumentError(PyClass::Value,
                          "allgather: array overlaps out other than as this rank's block");
    }
  });
  {
    const py::gil_scoped_release released;
    check.agree(c);
    with_type(mine.type, [&](auto tag) {
      using T = decltype(tag);
      allgather<T>(c, mine.span<T>(), all.span<T>());
    });
  }
  return out;
}

py::object reduce_scatter_py(py::object array, const std::string& op, py::object out,
                             py::object comm) {
  const Communicator& c = communicator(comm);
  const auto ranks = static_cast<std::size_t>(c.size());
  ArgumentCheck check;
  ArrayView data;
  ArrayView block;
  ReduceOp reduce_op = ReduceOp::Sum;
  check.run([&] {
    data = array_view(array, Access::Read, "reduce_scatter: array");
    reduce_op = parse_reduce_op(op);
    check_op_supports(reduce_op, data.type);
    if (data.count % ranks != 0) {
      throw ArgumentError(PyClass::Value,
                          fmt::format("reduce_scatter: array has {} elements, not a multiple "
                                      "of the {} ranks",
                                      data.count, ranks));
    }
    if (out.is_none()) {
      out = new_array(data.type, {static_cast<py::ssize_t>(data.count / ranks)});
    }
    block = array_view(out, Access::Write, "reduce_scatter: out");
    if (block.type != data.type || block.count * ranks != data.count) {
      throw ArgumentError(
          block.type != data.type ? PyClass::Type : PyClass::Value,
          fmt::format("reduce_scatter: out must hold {} elements of {}, got {} of {}",
                      data.count / ranks, to_string(data.type), block.count,
                      to_string(block.type)));
    }
    if (overlaps(data, block)) {
      throw ArgumentError(PyClass::Value, "reduce_scatter: out overlaps array");
    }
  });
  {
    const py::gil_scoped_release released;
    check.agree(c);
    with_type(data.type, [&](auto tag) {
      using T = decltype(tag);
      reduce_scatter<T>(c, data.span<T>(), block.span<T>(), reduce_op);
    });
  }
  return out;
}

}  // namespace

void bind_collectives(py::module_& m) {
  m.def("allreduce", &allreduce_py, py::arg("array"), py::arg("op") = "sum",
        py::arg("algorithm") = "auto", py::arg("comm") = py::none(),
        R"(Reduces `array` over the ranks of `comm`, in place, and returns it.

array: a C-contiguous, writable numpy.ndarray of float32, float64, int32 or int64 (never
    copied: a ValueError for a non-contiguous or read-only array, a TypeError for another
    dtype). Every rank passes the same size and dtype.
op: "sum", "avg", "min", "max" or "prod" ("avg" needs a float dtype).
algorithm: "auto" (by size and rank count, or RINGDP_ALGORITHM), "ring", "rd", "mpi", "ps",
    "shm", "hier".
comm: an mpi4py intracommunicator; None is MPI.COMM_WORLD.

Collective. The result is bit-identical on every rank. An argument one rank rejects raises
the same exception on every rank. The GIL is released while MPI runs.)");
  m.def("broadcast", &broadcast_py, py::arg("array"), py::arg("root") = 0,
        py::arg("comm") = py::none(),
        R"(Copies rank `root`'s `array` into `array` on every other rank, in place; returns it.
Every rank passes a C-contiguous, writable array of the same size and dtype. Collective.)");
  m.def("allgather", &allgather_py, py::arg("array"), py::arg("out") = py::none(),
        py::arg("comm") = py::none(),
        R"(Gathers every rank's `array` (the same size and dtype on every rank) on every rank and
returns `out`: by default a new array of shape (ranks, *array.shape), rank r's array at
out[r]. A given `out` must be C-contiguous, writable, of the same dtype and ranks x
array.size elements; `array` may be this rank's own block of it. Collective.)");
  m.def("reduce_scatter", &reduce_scatter_py, py::arg("array"), py::arg("op") = "sum",
        py::arg("out") = py::none(), py::arg("comm") = py::none(),
        R"(Reduces `array` (ranks x b elements, the same on every rank) over the ranks and
returns `out` holding this rank's block of b elements of the reduction (rank r: elements
r*b .. (r+1)*b of the flattened array), like MPI_Reduce_scatter_block. `out`: by default a
new 1-D array; a given one must be C-contiguous, writable, of b elements and array's dtype.
Collective.)");
}

}  // namespace ringdp::python
