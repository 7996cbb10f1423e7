#include "atomic_file.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ringdp/error.hpp"

namespace ringdp::bench {
namespace {

std::string temporary_name(const std::string& path) {
  return fmt::format("{}.tmp.{}", path, static_cast<long>(getpid()));
}

[[noreturn]] void fail(const std::string& what, const std::string& path, int error) {
  throw IoError(fmt::format("cannot {} '{}': {}", what, path, std::strerror(error)));
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::string temporary = temporary_name(path);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) fail("create", temporary, errno);
  const bool written = std::fwrite(contents.data(), 1, contents.size(), file) == contents.size();
  const int write_error = errno;
  if (std::fclose(file) != 0 || !written) {
    const int error = written ? errno : write_error;
    std::remove(temporary.c_str());
    fail("write", temporary, error);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    fail("rename to", path, error);
  }
}

std::string read_file_if_exists(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    if (errno == ENOENT) return {};
    fail("read", path, errno);
  }
  std::string contents;
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) contents.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) fail("read", path, EIO);
  return contents;
}

void check_writable(const std::string& path) {
  const std::string temporary = temporary_name(path);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) fail("create", temporary, errno);
  std::fclose(file);
  std::remove(temporary.c_str());
}

}  // namespace ringdp::bench
