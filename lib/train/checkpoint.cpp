#include "ringdp/train/checkpoint.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>

#include "ringdp/io/durable_file.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/hdf5_lock.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "train/checkpoint_file.hpp"

namespace ringdp::train {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "checkpoint-s";
constexpr std::string_view kSuffix = ".h5";

// The step of a checkpoint file name "checkpoint-s<digits>.h5", or nullopt for any other
// name (temporary files start with '.', so they never match).
std::optional<std::int64_t> step_of(const std::string& name) {
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return std::nullopt;
  }
  const std::string digits =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (digits.empty() || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(digits);
}

// Checkpoints of `directory`, sorted by increasing step.
std::vector<std::pair<std::int64_t, fs::path>> list_checkpoints(const fs::path& directory) {
  std::vector<std::pair<std::int64_t, fs::path>> found;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    if (const auto step = step_of(it->path().filename().string());
        step && it->is_regular_file(ec)) {
      found.emplace_back(*step, it->path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// --- broadcasting a Checkpoint as bytes ---------------------------------------------------
// Rank 0 has read the file; the others receive its content as one flat byte string. The
// encoding is private to one job (all ranks run the same binary), so host byte order is fine.

class Encoder {
 public:
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  void floats(const std::vector<float>& v) {
    u64(v.size());
    raw(v.data(), v.size() * sizeof(float));
  }
  std::vector<char>& bytes() { return bytes_; }

 private:
  void raw(const void* p, std::size_t n) {
    const auto* c = static_cast<const char*>(p);
    bytes_.insert(bytes_.end(), c, c + n);
  }
  std::vector<char> bytes_;
};

class Decoder {
 public:
  explicit Decoder(const std::vector<char>& bytes) : bytes_(bytes) {}
  std::uint64_t u64() {
    std::uint64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  std::int64_t i64() {
    std::int64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  std::string str() {
    std::string s(length(1), '\0');
    raw(s.data(), s.size());
    return s;
  }
  std::vector<float> floats() {
    std::vector<float> v(length(sizeof(float)));
    raw(v.data(), v.size() * sizeof(float));
    return v;
  }

 private:
  std::size_t length(std::size_t element) {
    const std::uint64_t n = u64();
    if (n > (bytes_.size() - at_) / element) throw Error("checkpoint broadcast: bad length");
    return n;
  }
  void raw(void* p, std::size_t n) {
    if (n > bytes_.size() - at_) throw Error("checkpoint broadcast: short message");
    std::memcpy(p, bytes_.data() + at_, n);
    at_ += n;
  }
  const std::vector<char>& bytes_;
  std::size_t at_ = 0;
};

std::vector<char> encode(const Checkpoint& c) {
  Encoder e;
  e.str(c.model_spec);
  e.i64(c.ranks);
  e.i64(c.epoch);
  e.i64(c.step_in_epoch);
  e.i64(c.step);
  e.floats(c.parameters);
  e.str(c.optimizer);
  e.i64(c.optimizer_steps);
  e.u64(c.optimizer_state.size());
  for (const NamedArray& a : c.optimizer_state) {
    e.str(a.name);
    e.floats(a.values);
  }
  e.str(c.sampling);
  e.i64(c.batch_size);
  e.i64(c.virtual_ranks);
  e.u64(c.seed);
  e.u64(c.metadata.size());
  for (const auto& [k, v] : c.metadata) {
    e.str(k);
    e.str(v);
  }
  return std::move(e.bytes());
}

Checkpoint decode(const std::vector<char>& bytes) {
  Decoder d(bytes);
  Checkpoint c;
  c.model_spec = d.str();
  c.ranks = static_cast<int>(d.i64());
  c.epoch = d.i64();
  c.step_in_epoch = d.i64();
  c.step = d.i64();
  c.parameters = d.floats();
  c.optimizer = d.str();
  c.optimizer_steps = d.i64();
  const std::uint64_t states = d.u64();
  for (std::uint64_t i = 0; i < states; ++i) {
    NamedArray a;
    a.name = d.str();
    a.values = d.floats();
    c.optimizer_state.push_back(std::move(a));
  }
  c.sampling = d.str();
  c.batch_size = d.i64();
  c.virtual_ranks = d.i64();
  c.seed = d.u64();
  const std::uint64_t entries = d.u64();
  for (std::uint64_t i = 0; i < entries; ++i) {
    std::string k = d.str();
    c.metadata.emplace_back(std::move(k), d.str());
  }
  return c;
}

// Broadcasts `bytes` from rank 0, in pieces that fit MPI's int counts.
void broadcast_bytes(const Communicator& comm, std::vector<char>& bytes) {
  std::uint64_t size = bytes.size();
  RINGDP_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, 0, comm.native()));
  bytes.resize(size);
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t at = 0; at < size; at += kPiece) {
    const std::size_t n = std::min<std::size_t>(kPiece, size - at);
    RINGDP_MPI_CHECK(MPI_Bcast(bytes.data() + at, ringdp::checked_mpi_count(n), MPI_BYTE, 0,
                               comm.native()));
  }
}

std::string broadcast_string(const Communicator& comm, std::string text) {
  std::vector<char> bytes(text.begin(), text.end());
  broadcast_bytes(comm, bytes);
  return {bytes.begin(), bytes.end()};
}

}  // namespace

std::string check_compatible(const Checkpoint& c, const CheckpointExpectation& e) {
  if (c.model_spec != e.model_spec) {
    return fmt::format("model spec mismatch: the checkpoint holds model {}, this run builds {}",
                       c.model_spec, e.model_spec);
  }
  if (c.parameters.size() != e.parameter_count) {
    return fmt::format("parameter count mismatch: the checkpoint holds {}, the model has {}",
                       c.parameters.size(), e.parameter_count);
  }
  if (c.ranks != e.ranks) {
    return fmt::format(
        "rank count mismatch: the checkpoint was written by a {}-rank run, this run has {} "
        "(resume with mpirun -np {})",
        c.ranks, e.ranks, c.ranks);
  }
  if (c.optimizer != e.optimizer) {
    return fmt::format("optimizer mismatch: the checkpoint holds {} state, this run uses {}",
                       c.optimizer, e.optimizer);
  }
  std::vector<std::string> names;
  for (const NamedArray& a : c.optimizer_state) names.push_back(a.name);
  if (names != e.optimizer_state_names) {
    return fmt::format(
        "optimizer state mismatch: the checkpoint holds {} state arrays, this run "
        "needs {} (different momentum setting?)",
        names.size(), e.optimizer_state_names.size());
  }
  return {};
}

std::string checkpoint_file_name(std::int64_t step) {
  return fmt::format("{}{:08}{}", kPrefix, step, kSuffix);
}

std::string save_checkpoint(const Communicator& comm, const std::string& directory,
                            const Checkpoint& checkpoint, int keep) {
  const fs::path dir = directory.empty() ? fs::path(".") : fs::path(directory);
  const std::string path = (dir / checkpoint_file_name(checkpoint.step)).string();
  std::string error;
  if (comm.rank() == 0) {
    try {
      if (keep < 1)
        throw InvalidArgument(fmt::format("checkpoints to keep must be >= 1, not {}", keep));
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) {
        throw IoError(
            fmt::format("cannot create checkpoint directory '{}': {}", dir.string(), ec.message()));
      }
      const std::string temporary = io::temporary_path_for(path);
      try {
        std::lock_guard lock(io::hdf5_mutex());
        detail::write_checkpoint_file(temporary, checkpoint);
      } catch (...) {
        std::remove(temporary.c_str());
        throw;
      }
      io::publish_file(temporary, path);
      // Only now that the new checkpoint is durable may old ones go: pruning first could
      // leave no checkpoint at all after a crash.
      auto all = list_checkpoints(dir);
      const std::size_t limit = static_cast<std::size_t>(keep);
      for (std::size_t i = 0; i + limit < all.size(); ++i) fs::remove(all[i].second, ec);
      // Temporaries of earlier runs that were killed mid-write: loaders never see them
      // (list_checkpoints() skips hidden names), and the first save of the next run
      // deletes them so that they do not pile up.
      io::remove_stale_temporaries(
          dir.string(), [](const std::string& name) { return step_of(name).has_value(); });
    } catch (const Error& e) {
      error = e.cause();
    } catch (const std::exception& e) {
      error = fmt::format("cannot write checkpoint '{}': {}", path, e.what());
    }
  }
  agree(comm, error);
  return path;
}

std::string latest_checkpoint(const Communicator& comm, const std::string& directory) {
  std::string latest;
  if (comm.rank() == 0) {
    const auto all = list_checkpoints(directory.empty() ? fs::path(".") : fs::path(directory));
    if (!all.empty()) latest = all.back().second.string();
  }
  return broadcast_string(comm, std::move(latest));
}

Checkpoint load_checkpoint(const Communicator& comm, const std::string& path,
                           const CheckpointExpectation* expected) {
  Checkpoint checkpoint;
  std::string error;
  if (comm.rank() == 0) {
    try {
      {
        std::lock_guard lock(io::hdf5_mutex());
        checkpoint = detail::read_checkpoint_file(path);
      }
      if (expected != nullptr) {
        if (std::string why = check_compatible(checkpoint, *expected); !why.empty()) {
          error = fmt::format("cannot resume from '{}': {}", path, why);
        }
      }
    } catch (const Error& e) {
      error = e.cause();
    } catch (const std::bad_alloc&) {
      error = fmt::format("checkpoint '{}': out of memory while reading it", path);
    } catch (const std::exception& e) {
      error = fmt::format("checkpoint '{}': {}", path, e.what());
    }
  }
  agree(comm, error);
  if (comm.size() == 1) return checkpoint;
  std::vector<char> bytes;
  if (comm.rank() == 0) bytes = encode(checkpoint);
  broadcast_bytes(comm, bytes);
  if (comm.rank() == 0) return checkpoint;
  return decode(bytes);
}

}  // namespace ringdp::train
