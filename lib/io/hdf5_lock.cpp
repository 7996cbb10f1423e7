#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::io {

std::recursive_mutex& hdf5_mutex() noexcept {
  static std::recursive_mutex mutex;
  return mutex;
}

}  // namespace ringdp::io
