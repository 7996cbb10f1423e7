#pragma once
// numpy arrays as ringdp buffers. Arrays are taken as they are, never converted: a
// converted copy (what py::array_t<T, forcecast> makes of a list or a float16 array) would
// receive an in-place result that the caller never sees. So the checks are explicit.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ringdp/types.hpp"

namespace ringdp::python {

namespace py = pybind11;

/// A numpy array's memory as ringdp sees it: C order, one of ringdp's element types.
struct ArrayView {
  void* data = nullptr;
  std::size_t count = 0;
  DataType type = DataType::Float32;

  template <Reducible T>
  [[nodiscard]] std::span<T> span() const noexcept {
    return {static_cast<T*>(data), count};
  }
  [[nodiscard]] std::size_t bytes() const noexcept { return count * size_of(type); }
};

/// Whether ringdp writes into the array.
enum class Access { Read, Write };

/// The view of `object`, which must be a numpy.ndarray (else TypeError) of float32,
/// float64, int32 or int64 in native byte order (else TypeError), C-contiguous and aligned
/// (else ValueError), and writable when `access` is Write (else ValueError). Throws
/// ArgumentError, whose message starts with `what` ("allreduce: array"). GIL held.
[[nodiscard]] ArrayView array_view(py::handle object, Access access, const char* what);

/// ringdp's element type for `dtype`: float32, float64, int32 or int64 in native byte order
/// (else ArgumentError as a TypeError, whose message starts with `what`).
[[nodiscard]] DataType data_type(const py::dtype& dtype, const char* what);

/// A new C-order array of `type` and `shape`. GIL held.
[[nodiscard]] py::array new_array(DataType type, const std::vector<py::ssize_t>& shape);

/// True when the memory of `a` and `b` overlaps.
[[nodiscard]] bool overlaps(const ArrayView& a, const ArrayView& b) noexcept;

/// Calls fn(T{}) with T the element type of `type`.
template <class Fn>
void with_type(DataType type, Fn&& fn) {
  switch (type) {
    case DataType::Float32:
      return fn(float{});
    case DataType::Float64:
      return fn(double{});
    case DataType::Int32:
      return fn(std::int32_t{});
    case DataType::Int64:
      return fn(std::int64_t{});
  }
}

}  // namespace ringdp::python
