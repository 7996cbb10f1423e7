#pragma once
// RAII owners of HDF5 identifiers, and the conversion of HDF5 failures into IoError.
// Private to the library: public headers never include hdf5.h.

#include <hdf5.h>

#include <string>
#include <string_view>
#include <utility>

namespace ringdp::data::detail {

/// A move-only owner of one HDF5 identifier, closed with `Close` (H5Fclose, H5Dclose...).
/// The caller holds hdf5_mutex() whenever a handle is created or destroyed. The moved-from
/// handle is left invalid, so exactly one owner ever closes an id.
template <herr_t (*Close)(hid_t)>
class H5Handle {
 public:
  H5Handle() noexcept = default;
  explicit H5Handle(hid_t id) noexcept : id_(id) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  H5Handle& operator=(H5Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  [[nodiscard]] hid_t get() const noexcept { return id_; }
  [[nodiscard]] bool valid() const noexcept { return id_ >= 0; }
  /// Gives up ownership without closing (for a close whose status the caller checks).
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  /// Closes the id (a failing close is ignored: destructors never throw).
  void reset() noexcept {
    if (id_ >= 0) static_cast<void>(Close(id_));
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using FileHandle = H5Handle<H5Fclose>;
using DatasetHandle = H5Handle<H5Dclose>;
using SpaceHandle = H5Handle<H5Sclose>;
using TypeHandle = H5Handle<H5Tclose>;
using PlistHandle = H5Handle<H5Pclose>;
using AttributeHandle = H5Handle<H5Aclose>;
using GroupHandle = H5Handle<H5Gclose>;

/// Turns off HDF5's printing of its error stack (ringdp reports errors itself). Cheap;
/// called at every entry point because the setting is per thread in thread-safe builds.
void silence_hdf5() noexcept;

/// The current HDF5 error stack in one line, outermost cause first, e.g.
/// "unable to open file: file signature not found"; empty when the stack is empty.
[[nodiscard]] std::string hdf5_error_text();

/// Throws IoError "<where>: <what>: <HDF5's explanation>" when `status` < 0; returns it.
template <class T>
T h5_check(T status, std::string_view where, std::string_view what);

[[noreturn]] void throw_hdf5_error(std::string_view where, std::string_view what);

template <class T>
T h5_check(T status, std::string_view where, std::string_view what) {
  if (status < 0) throw_hdf5_error(where, what);
  return status;
}

}  // namespace ringdp::data::detail
