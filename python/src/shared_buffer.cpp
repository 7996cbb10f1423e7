// ringdp.SharedBuffer: the C++ SharedBuffer (memory in the node-shared window of ringdp's
// duplicate of a communicator) as numpy arrays, so that ringdp.allreduce reduces it without
// copy-in.
//
// Lifetime. The memory is held by a Memory object, shared by the SharedBuffer and by every
// numpy view of it (each view's base is a capsule holding a reference), so no view outlives
// its memory; free() only drops the SharedBuffer's own reference. Giving the memory back
// is local while the communicator lives (the window reuses or frees it, collectively, at a
// later allocation or with the communicator). Once the communicator is gone, this memory may
// hold the window's last reference, and giving it back would free the window: MPI_Win_free,
// collective over the node, which a release at a moment garbage collection chooses cannot
// be. Then the memory is left mapped until the process ends, so that no rank ever waits.

#include "ringdp/collectives/shared_buffer.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <pybind11/numpy.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "arrays.hpp"
#include "bindings.hpp"
#include "comm.hpp"
#include "errors.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::python {
namespace {

// Whether a user communicator still exists (and with it ringdp's cached duplicate, whose
// window holds the buffers): an attribute on the user communicator, whose delete callback
// (MPI_Comm_free, or MPI_Finalize) clears the flag.
struct Liveness {
  std::atomic<bool> alive{true};
};

int liveness_keyval = MPI_KEYVAL_INVALID;  // created at the first SharedBuffer (GIL held)

int forget_communicator(MPI_Comm /*user*/, int /*keyval*/, void* value, void* /*extra*/) {
  auto* token = static_cast<std::shared_ptr<Liveness>*>(value);
  (*token)->alive.store(false);
  delete token;
  return MPI_SUCCESS;
}

// The liveness of `user`, set on it at the first call. Local. GIL held.
std::shared_ptr<Liveness> liveness(MPI_Comm user) {
  if (liveness_keyval == MPI_KEYVAL_INVALID) {
    // MPI_COMM_NULL_COPY_FN: a duplicate of `user` has a cached duplicate of its own.
    RINGDP_MPI_CHECK(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, forget_communicator,
                                            &liveness_keyval, nullptr));
  }
  void* value = nullptr;
  int found = 0;
  RINGDP_MPI_CHECK(MPI_Comm_get_attr(user, liveness_keyval, &value, &found));
  if (found != 0) return *static_cast<std::shared_ptr<Liveness>*>(value);
  auto token = std::make_unique<std::shared_ptr<Liveness>>(std::make_shared<Liveness>());
  RINGDP_MPI_CHECK(MPI_Comm_set_attr(user, liveness_keyval, token.get()));
  return *token.release();  // owned by the attribute from now on
}

using AnyBuffer = std::variant<SharedBuffer<float>, SharedBuffer<double>,
                               SharedBuffer<std::int32_t>, SharedBuffer<std::int64_t>>;

// One allocation, shared by the SharedBuffer and its numpy views.
class Memory {
 public:
  Memory(AnyBuffer buffer, void* data, std::shared_ptr<Liveness> comm)
      : buffer_(std::move(buffer)), data_(data), comm_(std::move(comm)) {}
  ~Memory() {
    // See the top of the file: once the communicator is gone, the buffer is left mapped
    // (deliberately leaked) rather than risk a collective MPI_Win_free on this rank alone.
    // After MPI_Finalize the window's own destructor frees nothing.
    if (!comm_->alive.load() && !Environment::finalized()) {
      static_cast<void>(
          new AnyBuffer(std::move(buffer_)));  // NOLINT(cppcoreguidelines-owning-memory)
    }
  }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  [[nodiscard]] void* data() const noexcept { return data_; }

 private:
  AnyBuffer buffer_;
  void* data_;
  std::shared_ptr<Liveness> comm_;
};

class PySharedBuffer {
 public:
  PySharedBuffer(py::ssize_t count, const py::object& dtype, const py::object& comm) {
    const Communicator& c = communicator(comm);
    std::shared_ptr<Liveness> alive = liveness(mpi_comm(comm));
    ArgumentCheck check;
    check.run([&] {
      py::dtype converted;
      try {
        converted = py::dtype::from_args(dtype);
      } catch (const py::error_already_set& e) {
        throw ArgumentError(PyClass::Type,
                            fmt::format("SharedBuffer: dtype {} is not a numpy "
                                        "dtype ({})",
                                        py::repr(dtype).cast<std::string>(), e.what()));
      }
      type_ = data_type(converted, "SharedBuffer");
      if (count < 0) {
        throw ArgumentError(PyClass::Value,
                            fmt::format("SharedBuffer: count {} is negative", count));
      }
      count_ = static_cast<std::size_t>(count);
    });
    const py::gil_scoped_release released;
    check.agree(c);
    with_type(type_, [&](auto tag) {
      using T = decltype(tag);
      SharedBuffer<T> buffer(c, count_);  // collective: a count that differs is a MismatchError
      void* data = buffer.data();
      memory_ = std::make_shared<Memory>(AnyBuffer(std::move(buffer)), data, std::move(alive));
    });
  }

  // A numpy view of the whole buffer; its base holds the memory.
  [[nodiscard]] py::array array() const {
    if (!memory_) {
      throw py::value_error(
          "SharedBuffer: the buffer was freed (free() or the end of a with "
          "block); views taken before stay valid");
    }
    auto holder = std::make_unique<std::shared_ptr<Memory>>(memory_);
    const py::capsule base(holder.get(), [](void* p) {
      delete static_cast<std::shared_ptr<Memory>*>(p);  // GIL held: Memory's release is local
    });
    holder.release();  // owned by the capsule
    py::array result;
    with_type(type_, [&](auto tag) {
      using T = decltype(tag);
      result = py::array_t<T>({static_cast<py::ssize_t>(count_)},
                              static_cast<const T*>(memory_->data()), base);
    });
    return result;
  }

  void free() noexcept { memory_.reset(); }
  [[nodiscard]] bool freed() const noexcept { return !memory_; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] py::dtype dtype() const {
    py::dtype result;
    with_type(type_, [&](auto tag) { result = py::dtype::of<decltype(tag)>(); });
    return result;
  }

 private:
  std::shared_ptr<Memory> memory_;
  std::size_t count_ = 0;
  DataType type_ = DataType::Float32;
};

}  // namespace

void bind_shared_buffer(py::module_& m) {
  const py::object float32 = py::module_::import("numpy").attr("float32");
  py::class_<PySharedBuffer>(m, "SharedBuffer", R"(Memory the ranks of a node share: numpy
arrays that ringdp.allreduce reduces without copying them in.

SharedBuffer(count, dtype=numpy.float32, comm=None)

Collective over `comm` (an mpi4py intracommunicator; None is MPI.COMM_WORLD): every rank
passes the same count and dtype (a count that differs is ringdp.MismatchError on every
rank). dtype: float32, float64, int32 or int64 (another is a TypeError on every rank). The
memory lies in the node-shared window of ringdp's duplicate of `comm`; its contents start
unspecified. `buf.array` (or numpy.asarray(buf)) is a writable 1-D view of this rank's
`count` elements; ringdp.allreduce(buf.array, comm=comm) with algorithm "shm", "hier" (or
"auto" when it picks them) reads the node's buffers in place and writes the result straight
into them. Any other use of the array is ordinary numpy.

Freeing: free() (or leaving a `with` block) drops the buffer; the memory goes back when
the last numpy view of it is gone too, so views never dangle. Giving it back is local (no
rank waits for another): the window reuses or frees it at a later SharedBuffer allocation
on the communicator, or when the communicator is freed. Garbage collection does the same as
free(). A buffer or view that outlives its communicator (comm.Free()) stays mapped until the
process ends: freeing the window then would be collective over the node, which a release at
any moment cannot be. Not while another thread runs a collective on the same communicator.)")
      .def(py::init<py::ssize_t, const py::object&, const py::object&>(), py::arg("count"),
           py::arg("dtype") = float32, py::arg("comm") = py::none())
      .def_property_readonly("array", &PySharedBuffer::array,
                             "A writable 1-D numpy view of this rank's elements (keeps the "
                             "memory alive). ValueError after free().")
      .def(
          "__array__",
          [](const PySharedBuffer& self, const py::object& dtype, const py::object& copy) {
            py::object view = self.array();
            if (!copy.is_none() && copy.cast<bool>()) view = view.attr("copy")();
            if (!dtype.is_none()) view = view.attr("astype")(dtype, py::arg("copy") = false);
            return view;
          },
          py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def("free", &PySharedBuffer::free,
           "Drops the buffer (local; the memory goes back once its views are gone too). "
           "Calling it again does nothing.")
      .def_property_readonly("freed", &PySharedBuffer::freed, "Whether free() was called.")
      .def_property_readonly("dtype", &PySharedBuffer::dtype, "The element type.")
      .def_property_readonly("size", &PySharedBuffer::size, "Elements on this rank.")
      .def("__len__", &PySharedBuffer::size)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PySharedBuffer& self, const py::args& /*exc*/) {
             self.free();
             return false;
           })
      .def("__repr__", [](const PySharedBuffer& self) {
        return fmt::format("ringdp.SharedBuffer({}, dtype={}{})", self.size(),
                           py::str(self.dtype()).cast<std::string>(),
                           self.freed() ? ", freed" : "");
      });
}

}  // namespace ringdp::python
