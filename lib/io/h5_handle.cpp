#include "ringdp/io/h5_handle.hpp"

#include <fmt/format.h>

#include <vector>

#include "ringdp/error.hpp"

namespace ringdp::io {

void silence_hdf5() noexcept { static_cast<void>(H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr)); }

namespace {

herr_t collect_description(unsigned /*n*/, const H5E_error2_t* error, void* data) {
  auto* lines = static_cast<std::vector<std::string>*>(data);
  if (error != nullptr && error->desc != nullptr && error->desc[0] != '\0') {
    lines->emplace_back(error->desc);
  }
  return 0;
}

}  // namespace

std::string hdf5_error_text() {
  // Walking downward lists the API-level failure first and its deepest cause last; the
  // two ends say the most ("unable to open file" ... "file signature not found").
  std::vector<std::string> lines;
  static_cast<void>(H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_description, &lines));
  static_cast<void>(H5Eclear2(H5E_DEFAULT));
  if (lines.empty()) return {};
  if (lines.size() == 1) return lines.front();
  return fmt::format("{}: {}", lines.front(), lines.back());
}

void throw_hdf5_error(std::string_view where, std::string_view what) {
  const std::string detail = hdf5_error_text();
  if (detail.empty()) throw IoError(fmt::format("{}: {}", where, what));
  throw IoError(fmt::format("{}: {} ({})", where, what, detail));
}

}  // namespace ringdp::io
