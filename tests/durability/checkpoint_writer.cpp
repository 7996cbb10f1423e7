// The victim of the checkpoint kill test (kill_test.py): first checks what the previous,
// killed writer left in the directory, through ringdp's own loader, then writes
// checkpoints of ever new content back to back until it is killed (or --count is reached).
//
//   checkpoint_writer --dir D --first-step S [--count N] [--floats P]
//
// Output lines (stdout, flushed): "verdict ok files=F latest=L temps=T" or
// "verdict FAIL <why>", then "ready pid=<pid>", then "saved step=<s> seconds=<t>" per save.
//
// The content of the checkpoint of step s is a pure function of s (see pattern()), so any
// reader can tell whether a file is complete and which write it came from; kill_test.py
// checks the same with h5py, independently of this program.

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"
#include "ringdp/train/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using namespace ringdp::train;

// Parameter j of the checkpoint of step s: an integer below 2^16 divided by 64, minus 512,
// exact in float32, different for every s (mod 65536 / gcd) and every j. The momentum
// state is its negation. kill_test.py computes the same with numpy.
std::vector<float> pattern(std::int64_t step, std::size_t n, float sign) {
  std::vector<float> v(n);
  for (std::size_t j = 0; j < n; ++j) {
    const auto k = static_cast<std::uint64_t>(step) * 7919u + static_cast<std::uint64_t>(j) * 31u;
    v[j] = sign * (static_cast<float>(k % 65536u) / 64.0f - 512.0f);
  }
  return v;
}

Checkpoint make_checkpoint(std::int64_t step, std::size_t floats, int ranks) {
  Checkpoint c;
  c.model_spec = "durability-test";
  c.ranks = ranks;
  c.step = step;
  c.parameters = pattern(step, floats, 1.0f);
  c.optimizer = "sgd";
  c.optimizer_steps = step;
  c.optimizer_state = {{"momentum", pattern(step, floats, -1.0f)}};
  c.sampling = "global";
  c.batch_size = 1;
  c.metadata = {{"writer", "checkpoint_writer"}};
  return c;
}

// Every visible checkpoint of `dir` must load through ringdp's loader and hold exactly
// the content of its step. Returns "" or what is wrong.
std::string verify(const ringdp::Communicator& comm, const std::string& dir, std::size_t floats,
                   int& files, std::int64_t& latest, int& temps) {
  files = 0;
  temps = 0;
  latest = -1;
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with('.') && name.find(".tmp-") != std::string::npos) {
      ++temps;
    } else if (name.starts_with("checkpoint-s")) {
      names.push_back(it->path().string());
    }
  }
  const std::string newest = latest_checkpoint(comm, dir);
  if (names.empty() != newest.empty()) {
    return fmt::format("latest_checkpoint gave '{}' with {} checkpoint files", newest,
                       names.size());
  }
  if (!newest.empty() && fs::path(newest).filename().string().starts_with('.')) {
    return fmt::format("latest_checkpoint returned a temporary file '{}'", newest);
  }
  for (const std::string& path : names) {
    try {
      const Checkpoint c = load_checkpoint(comm, path);
      const std::string expected_name = checkpoint_file_name(c.step);
      if (fs::path(path).filename().string() != expected_name) {
        return fmt::format("'{}' holds step {}", path, c.step);
      }
      if (c.parameters != pattern(c.step, floats, 1.0f) || c.optimizer_state.size() != 1 ||
          c.optimizer_state[0].values != pattern(c.step, floats, -1.0f)) {
        return fmt::format("'{}' loads but its arrays are not those of step {}", path, c.step);
      }
      ++files;
      latest = std::max(latest, c.step);
    } catch (const ringdp::Error& e) {
      return fmt::format("'{}' does not load: {}", path, e.what());
    }
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv);
  const ringdp::Communicator comm(MPI_COMM_WORLD);
  CLI::App app("checkpoint writer for the kill test");
  std::string dir;
  std::int64_t first_step = 1;
  std::int64_t count = 1000000;
  std::size_t floats = std::size_t{1} << 20;
  app.add_option("--dir", dir)->required();
  app.add_option("--first-step", first_step);
  app.add_option("--count", count);
  app.add_option("--floats", floats);
  CLI11_PARSE(app, argc, argv);
  const bool root = comm.rank() == 0;

  int files = 0;
  int temps = 0;
  std::int64_t latest = -1;
  const std::string why = verify(comm, dir, floats, files, latest, temps);
  if (root) {
    if (why.empty()) {
      std::printf("verdict ok files=%d latest=%lld temps=%d\n", files,
                  static_cast<long long>(latest), temps);
    } else {
      std::printf("verdict FAIL %s\n", why.c_str());
    }
    std::printf("ready pid=%ld\n", static_cast<long>(::getpid()));
    std::fflush(stdout);
  }
  if (!why.empty()) return 1;

  for (std::int64_t i = 0; i < count; ++i) {
    const Checkpoint c = make_checkpoint(first_step + i, floats, comm.size());
    const auto t0 = std::chrono::steady_clock::now();
    save_checkpoint(comm, dir, c, 2);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (root) {
      std::printf("saved step=%lld seconds=%.6f\n", static_cast<long long>(c.step), seconds);
      std::fflush(stdout);
    }
  }
  return 0;
}
