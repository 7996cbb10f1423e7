#pragma once
/// \file
/// The process-wide lock around HDF5 calls.

#include <mutex>

namespace ringdp::io {

/// The HDF5 library of the Debian parallel build is not thread-safe: only one thread may
/// be inside it at a time. Every HDF5 call of ringdp (dataset reads on the loader's
/// background thread, opens and writes on the calling thread) holds this lock; any other
/// code of the process that calls HDF5 while a data::ShardedLoader is alive (a checkpoint
/// writer, say) must hold it too. Recursive, so nested helpers may lock again.
[[nodiscard]] std::recursive_mutex& hdf5_mutex() noexcept;

}  // namespace ringdp::io
