#include "ringdp/io/durable_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "ringdp/error.hpp"

namespace ringdp::io {
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

// True when no process `pid` runs on this host any more. A killed process stays visible
// as a zombie until its parent (or init, once the parent is gone too) reaps it; it writes
// nothing any more, so it counts as gone.
bool process_gone(pid_t pid) {
  // kill(pid, 0) sends nothing; ESRCH means no such process. EPERM (another user's) and
  // success both mean the pid exists.
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!std::getline(stat, text)) return false;
  // "pid (command) state ...": the command may hold spaces and parentheses, the state
  // follows the last ')'.
  const std::size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() &&
         (text[close + 2] == 'Z' || text[close + 2] == 'X');
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

void write_file_durably(const std::string& path, const std::string& contents) {
  const std::string temporary = temporary_path_for(path);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    throw IoError(fmt::format("cannot write '{}': cannot create '{}': {}", path, temporary,
                              errno_text(errno)));
  }
  int code = 0;
  for (std::size_t done = 0; done < contents.size() && code == 0;) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      code = errno;
    }
  }
  // close() reports a deferred write error (NFS, a full disk) too.
  if (::close(fd) != 0 && code == 0) code = errno;
  if (code != 0) {
    std::remove(temporary.c_str());
    throw IoError(
        fmt::format("cannot write '{}': writing '{}': {}", path, temporary, errno_text(code)));
  }
  publish_file(temporary, path);  // fsync, rename, fsync the directory; cleans up on failure
}

std::string read_file_if_exists(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    throw IoError(fmt::format("cannot read '{}': {}", path, errno_text(errno)));
  }
  std::string contents;
  char buffer[1 << 16];
  int code = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      contents.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      code = errno;
      break;
    }
  }
  ::close(fd);
  if (code != 0) throw IoError(fmt::format("cannot read '{}': {}", path, errno_text(code)));
  return contents;
}

void check_writable(const std::string& path) {
  const std::string temporary = temporary_path_for(path);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    throw IoError(fmt::format("cannot write '{}': cannot create '{}': {}", path, temporary,
                              errno_text(errno)));
  }
  ::close(fd);
  std::remove(temporary.c_str());
}

std::size_t remove_stale_temporaries(const std::string& directory,
                                     const std::function<bool(const std::string&)>& matches) {
  namespace fs = std::filesystem;
  constexpr std::string_view kMarker = ".tmp-";
  std::size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(directory.empty() ? "." : directory, ec), end; !ec && it != end;
       it.increment(ec)) {
    // ".<final name>.tmp-<pid>", as temporary_path_for() makes them.
    const std::string name = it->path().filename().string();
    const std::size_t marker = name.rfind(kMarker);
    if (name.size() < 2 || name[0] != '.' || marker == std::string::npos || marker < 2) continue;
    const std::string digits = name.substr(marker + kMarker.size());
    if (digits.empty() || digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    if (!matches(name.substr(1, marker - 1))) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || !process_gone(pid)) continue;
    std::error_code remove_ec;
    if (fs::remove(it->path(), remove_ec)) ++removed;
  }
  return removed;
}

}  // namespace ringdp::io
