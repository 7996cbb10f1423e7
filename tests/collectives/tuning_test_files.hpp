#pragma once
// The tuning files of the RINGDP_TUNING error tests (tests/collectives/tuning/), and the
// variable that names one, shared by the C++ and the C API scenarios of test_tuning_errors.

#include <cstdlib>
#include <string>

#ifndef RINGDP_TUNING_TEST_DIR
#error "RINGDP_TUNING_TEST_DIR must name the folder of the test tuning files"
#endif

namespace ringdp::test {

inline const std::string kTuningDir = RINGDP_TUNING_TEST_DIR;

/// Sets RINGDP_TUNING for this process (empty: unsets it), before ringdp first reads it.
inline void set_tuning(const std::string& path) {
  if (path.empty()) {
    unsetenv("RINGDP_TUNING");
  } else {
    setenv("RINGDP_TUNING", path.c_str(), 1);
  }
}

}  // namespace ringdp::test
