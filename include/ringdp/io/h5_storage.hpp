#pragma once
/// \file
/// Checks that a dataset's header is backed by data in the file, before anything reads or
/// allocates for the extent it claims. Includes <hdf5.h>, like ringdp/io/h5_handle.hpp
/// (link HDF5 yourself; ringdp/ringdp.hpp leaves it out).

#include <hdf5.h>

#include <string>

namespace ringdp::io {

/// Throws IoError "<where>: ... never written ..." when the dataset's extent is not fully
/// stored: a chunked dataset with fewer chunks in the file than its shape needs, or a
/// contiguous one without storage. HDF5 accepts such a dataset (unwritten chunks read as
/// the fill value), so an interrupted write or a corrupted extent - a header claiming 2^40
/// rows - would otherwise be read and scanned as if it held data: days of zeros, or an
/// allocation for all of them. Cost: one walk of the chunk index, or at most 65 index
/// lookups for a huge extent (no data is read). `where` names the file and the dataset.
/// The caller holds io::hdf5_mutex() when other threads may call HDF5.
void require_fully_stored(hid_t dataset, const std::string& where);

}  // namespace ringdp::io
