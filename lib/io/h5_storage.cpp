#include "ringdp/io/h5_storage.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <limits>
#include <string>
#include <vector>

#include "ringdp/error.hpp"
#include "ringdp/io/h5_handle.hpp"

namespace ringdp::io {

void require_fully_stored(hid_t dataset, const std::string& where) {
  SpaceHandle space(h5_check(H5Dget_space(dataset), where, "cannot read its dataspace"));
  const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), where, "cannot read its rank");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where,
           "cannot read its shape");
  for (const hsize_t d : dims) {
    if (d == 0) return;  // nothing to store
  }
  PlistHandle create(
      h5_check(H5Dget_create_plist(dataset), where, "cannot read its creation properties"));
  const H5D_layout_t layout = H5Pget_layout(create.get());
  if (layout == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    h5_check(H5Pget_chunk(create.get(), rank, chunk.data()), where, "cannot read its chunk shape");
    // Chunks the extent needs, saturating: a corrupted extent may claim more than 2^64.
    hsize_t needed = 1;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (chunk[i] == 0) throw IoError(fmt::format("{}: chunk shape has a zero extent", where));
      const hsize_t per_dim = dims[i] / chunk[i] + (dims[i] % chunk[i] != 0 ? 1 : 0);
      needed = per_dim != 0 && needed > std::numeric_limits<hsize_t>::max() / per_dim
                   ? std::numeric_limits<hsize_t>::max()
                   : needed * per_dim;
    }
    // Up to kExactCount chunks are counted exactly. Beyond, chunks are probed one by one by
    // their coordinates: HDF5's count visits every chunk of the extent, stored or not
    // (for a claimed 2^40 rows, hours), while a probe is one index lookup. The
    // probes cover the last chunk (written last by a sequential writer, and the one a
    // corrupted extent points past) and 64 spread over the rows.
    constexpr hsize_t kExactCount = hsize_t{1} << 20;
    constexpr hsize_t kProbes = 64;
    if (needed <= kExactCount) {
      hsize_t stored = 0;
      h5_check(H5Dget_num_chunks(dataset, space.get(), &stored), where,
               "cannot count its stored chunks");
      if (stored < needed) {
        throw IoError(fmt::format(
            "{}: shape ({}) needs {} chunks but the file stores {}: rows never written (an "
            "unfinished write, or a corrupted shape)",
            where, fmt::join(dims, " x "), needed, stored));
      }
      return;
    }
    const hsize_t row_chunks = (dims[0] + chunk[0] - 1) / chunk[0];
    for (hsize_t p = 0; p <= kProbes; ++p) {
      std::vector<hsize_t> offset(dims.size(), 0);
      const hsize_t c = p == kProbes ? row_chunks - 1 : row_chunks / kProbes * p;
      offset[0] = c * chunk[0];
      if (p == kProbes) {
        for (std::size_t i = 1; i < dims.size(); ++i)
          offset[i] = (dims[i] - 1) / chunk[i] * chunk[i];
      }
      // H5Dget_chunk_storage_size is one index lookup (0 bytes: not stored); the
      // H5Dget_chunk_info* calls of HDF5 1.10 iterate the whole index instead.
      // A chunk that is not stored fails the call ("chunk storage is not allocated").
      hsize_t bytes = 0;
      if (H5Dget_chunk_storage_size(dataset, offset.data(), &bytes) < 0) {
        static_cast<void>(hdf5_error_text());  // clear the stack
        bytes = 0;
      }
      if (bytes == 0) {
        throw IoError(fmt::format(
            "{}: shape ({}) but the chunk at row {} is not in the file: rows never written (an "
            "unfinished write, or a corrupted shape)",
            where, fmt::join(dims, " x "), offset[0]));
      }
    }
  } else if (layout == H5D_CONTIGUOUS) {
    H5D_space_status_t status{};
    h5_check(H5Dget_space_status(dataset, &status), where, "cannot read its storage status");
    if (status != H5D_SPACE_STATUS_ALLOCATED) {
      throw IoError(fmt::format("{}: shape ({}) has no storage in the file: never written", where,
                                fmt::join(dims, " x ")));
    }
  }
}

}  // namespace ringdp::io
