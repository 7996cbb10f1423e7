#include "arrays.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <functional>
#include <string>

#include "errors.hpp"

namespace ringdp::python {
namespace {

using Api = py::detail::npy_api;

bool native_order(char order) {
  // numpy writes '=' for native order and '|' where order does not apply; an explicit
  // '<' or '>' is native only when it names this machine's order.
  const char native = std::endian::native == std::endian::little ? '<' : '>';
  return order == '=' || order == '|' || order == native;
}

std::string type_name(py::handle object) {
  return py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>();
}

}  // namespace

DataType data_type(const py::dtype& dtype, const char* what) {
  if (native_order(dtype.byteorder())) {
    const char kind = dtype.kind();
    const auto size = dtype.itemsize();
    if (kind == 'f' && size == 4) return DataType::Float32;
    if (kind == 'f' && size == 8) return DataType::Float64;
    if (kind == 'i' && size == 4) return DataType::Int32;
    if (kind == 'i' && size == 8) return DataType::Int64;
  }
  throw ArgumentError(PyClass::Type,
                      fmt::format("{} has dtype {}; ringdp reduces float32, float64, int32 and "
                                  "int64 in native byte order",
                                  what, py::str(py::handle(dtype)).cast<std::string>()));
}

ArrayView array_view(py::handle object, Access access, const char* what) {
  if (!py::isinstance<py::array>(object)) {
    throw ArgumentError(PyClass::Type,
                        fmt::format("{} must be a numpy.ndarray, got {}", what, type_name(object)));
  }
  const auto array = py::reinterpret_borrow<py::array>(object);
  const DataType type = data_type(array.dtype(), what);
  const int flags = array.flags();
  if ((flags & Api::NPY_ARRAY_C_CONTIGUOUS_) == 0) {
    throw ArgumentError(PyClass::Value,
                        fmt::format("{} is not C-contiguous; ringdp works in place on the "
                                    "array's memory (pass numpy.ascontiguousarray(a) and use "
                                    "the result)",
                                    what));
  }
  if ((flags & Api::NPY_ARRAY_ALIGNED_) == 0) {
    throw ArgumentError(PyClass::Value, fmt::format("{} is not aligned for its dtype", what));
  }
  if (access == Access::Write && (flags & Api::NPY_ARRAY_WRITEABLE_) == 0) {
    throw ArgumentError(PyClass::Value,
                        fmt::format("{} is read-only; ringdp writes the result into it", what));
  }
  // The data pointer of a read-only array is only read (Access::Read).
  void* data = const_cast<void*>(array.data());
  return {data, static_cast<std::size_t>(array.size()), type};
}

py::array new_array(DataType type, const std::vector<py::ssize_t>& shape) {
  py::array result;
  with_type(type, [&](auto tag) { result = py::array_t<decltype(tag)>(shape); });
  return result;
}

bool overlaps(const ArrayView& a, const ArrayView& b) noexcept {
  if (a.bytes() == 0 || b.bytes() == 0) return false;
  const auto* x = static_cast<const std::byte*>(a.data);
  const auto* y = static_cast<const std::byte*>(b.data);
  const std::less<const std::byte*> less;
  return less(x, y + b.bytes()) && less(y, x + a.bytes());
}

}  // namespace ringdp::python
