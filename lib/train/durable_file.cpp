#include "train/durable_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "ringdp/comm/error.hpp"

namespace ringdp::train::detail {
namespace {

std::string errno_text(int code) {
  return std::error_code(code, std::generic_category()).message();
}

// fsync on a descriptor opened read-only is enough on Linux and macOS: it flushes the
// file's (or directory's) dirty pages and metadata whatever the descriptor's mode.
int sync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  int result = 0;
  if (::fsync(fd) != 0) result = errno;
  ::close(fd);
  return result;
}

}  // namespace

std::string temporary_path_for(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string name = fmt::format(".{}.tmp-{}", p.filename().string(), ::getpid());
  return (p.parent_path() / name).string();
}

void sync_file(const std::string& path) {
  if (const int code = sync_path(path, O_RDONLY); code != 0) {
    throw IoError(fmt::format("cannot flush '{}' to disk: {}", path, errno_text(code)));
  }
}

void publish_file(const std::string& temporary, const std::string& path) {
  try {
    sync_file(temporary);
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int code = errno;
    std::remove(temporary.c_str());
    throw IoError(fmt::format("cannot rename '{}' to '{}': {}", temporary, path, errno_text(code)));
  }
  // The rename is only durable once the directory entry is on disk. Some file systems
  // refuse fsync on a directory (EINVAL); the data itself is safe then, so that is not
  // an error.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (const int code = sync_path(dir.string(), O_RDONLY | O_DIRECTORY);
      code != 0 && code != EINVAL && code != EROFS) {
    throw IoError(
        fmt::format("cannot flush directory '{}' to disk: {}", dir.string(), errno_text(code)));
  }
}

}  // namespace ringdp::train::detail
