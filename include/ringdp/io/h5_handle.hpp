#pragma once
/// \file
/// RAII owners of HDF5 identifiers, and checked HDF5 calls whose failures become IoError.
///
/// One of the two public headers of ringdp that include <hdf5.h> (with
/// ringdp/io/h5_storage.hpp): a program that includes it links HDF5 itself (CMake:
/// `hdf5::hdf5` beside `ringdp::ringdp`), and ringdp/ringdp.hpp leaves it out. The HDF5 of the Debian parallel build is not thread-safe: hold
/// io::hdf5_mutex() (ringdp/io/hdf5_lock.hpp) around every HDF5 call, handles' creation
/// and destruction included, whenever another thread may be inside HDF5.

#include <hdf5.h>

#include <string>
#include <string_view>
#include <utility>

namespace ringdp::io {

/// A move-only owner of one HDF5 identifier, closed with `Close` (H5Fclose, H5Dclose...).
/// The moved-from handle is left invalid, so exactly one owner ever closes an id. Not
/// thread-safe (see the lock above).
template <herr_t (*Close)(hid_t)>
class H5Handle {
 public:
  H5Handle() noexcept = default;
  /// Takes ownership of `id` (a negative id, HDF5's failure value, is held as invalid).
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

  /// The identifier, still owned by the handle.
  [[nodiscard]] hid_t get() const noexcept { return id_; }
  /// True when the handle holds an identifier.
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

using FileHandle = H5Handle<H5Fclose>;       ///< H5Fopen, H5Fcreate
using DatasetHandle = H5Handle<H5Dclose>;    ///< H5Dopen2, H5Dcreate2
using SpaceHandle = H5Handle<H5Sclose>;      ///< H5Dget_space, H5Screate_simple...
using TypeHandle = H5Handle<H5Tclose>;       ///< H5Dget_type, H5Tcopy...
using PlistHandle = H5Handle<H5Pclose>;      ///< H5Pcreate, H5Dget_create_plist...
using AttributeHandle = H5Handle<H5Aclose>;  ///< H5Aopen, H5Acreate2
using GroupHandle = H5Handle<H5Gclose>;      ///< H5Gopen2, H5Gcreate2

/// Turns off HDF5's printing of its error stack (ringdp reports errors itself). Cheap;
/// call it at every entry point: the setting is per thread in thread-safe builds.
void silence_hdf5() noexcept;

/// The current HDF5 error stack in one line, outermost cause first, e.g. "unable to open
/// file: file signature not found"; empty when the stack is empty. Clears the stack.
[[nodiscard]] std::string hdf5_error_text();

/// Throws IoError "<where>: <what> (<HDF5's explanation>)"; `where` names the file and
/// the object, `what` the operation that failed.
[[noreturn]] void throw_hdf5_error(std::string_view where, std::string_view what);

/// Returns `status` (an id, a count, an herr_t), or throws throw_hdf5_error(where, what)
/// when it is negative: `FileHandle file(h5_check(H5Fopen(...), where, "cannot open"))`.
template <class T>
T h5_check(T status, std::string_view where, std::string_view what) {
  if (status < 0) throw_hdf5_error(where, what);
  return status;
}

}  // namespace ringdp::io
