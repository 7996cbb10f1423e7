// The checkpoint loader against corrupted checkpoints: a valid checkpoint written by
// save_checkpoint, then truncated at many offsets and with bytes flipped at many offsets.
// load_checkpoint (collective: rank 0 reads, the ranks agree, rank 0 broadcasts) must end
// every variant in the same ringdp::Error on every rank, or - for a flipped byte that no
// checksum covers because nothing reads it - return exactly the checkpoint that was saved
// (on every rank). Never a crash, a hang (a watchdog names the case) or a huge allocation.
#include <mpi.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

#include "data_fixture.hpp"
#include "hostile.hpp"
#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/train/checkpoint.hpp"
#include "watchdog.hpp"

using ringdp::test::all_ranks;
using ringdp::train::Checkpoint;

namespace {

Checkpoint sample(std::size_t n) {
  Checkpoint c;
  c.model_spec = "6-5-3";
  c.ranks = 2;
  c.epoch = 4;
  c.step_in_epoch = 1;
  c.step = 41;
  c.parameters.resize(n);
  for (std::size_t i = 0; i < n; ++i) c.parameters[i] = std::cos(0.29f * static_cast<float>(i));
  c.optimizer = "sgd";
  c.optimizer_steps = 41;
  c.optimizer_state = {{"momentum", std::vector<float>(n, -0.125f)}};
  c.sampling = "shard";
  c.batch_size = 8;
  c.virtual_ranks = 0;
  c.seed = 77;
  c.metadata = {{"flags", "--epochs 5"}, {"note", "hostile-file base"}};
  return c;
}

// The fields of `b` that differ from `a`, comma-separated; empty when identical.
std::string differences(const Checkpoint& a, const Checkpoint& b) {
  auto bits = [](const std::vector<float>& x, const std::vector<float>& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
  };
  std::string d;
  auto note = [&](bool equal, const std::string& what) {
    if (!equal) d += (d.empty() ? "" : ", ") + what;
  };
  note(a.model_spec == b.model_spec, "model_spec '" + b.model_spec + "'");
  note(a.ranks == b.ranks, "ranks");
  note(a.epoch == b.epoch, "epoch");
  note(a.step_in_epoch == b.step_in_epoch, "step_in_epoch");
  note(a.step == b.step, "step");
  note(bits(a.parameters, b.parameters), "parameters");
  note(a.optimizer == b.optimizer, "optimizer '" + b.optimizer + "'");
  note(a.optimizer_steps == b.optimizer_steps, "optimizer_steps");
  note(a.sampling == b.sampling, "sampling '" + b.sampling + "'");
  note(a.batch_size == b.batch_size, "batch_size");
  note(a.virtual_ranks == b.virtual_ranks, "virtual_ranks");
  note(a.seed == b.seed, "seed");
  bool state = a.optimizer_state.size() == b.optimizer_state.size();
  for (std::size_t i = 0; state && i < a.optimizer_state.size(); ++i) {
    state = a.optimizer_state[i].name == b.optimizer_state[i].name &&
            bits(a.optimizer_state[i].values, b.optimizer_state[i].values);
  }
  note(state, "optimizer_state");
  // Metadata may come back in another order (HDF5 lists attributes by name).
  auto sorted = [](auto m) {
    std::sort(m.begin(), m.end());
    return m;
  };
  std::string meta;
  for (const auto& [k, v] : b.metadata) meta += " " + k + "='" + v + "'";
  note(sorted(a.metadata) == sorted(b.metadata), "metadata" + meta);
  return d;
}

struct Case {
  std::string name;
  std::string file;
  bool must_fail = true;  // false: Error, or the saved checkpoint exactly
  std::function<std::vector<unsigned char>(const std::vector<unsigned char>&)> make;
};

std::vector<Case> cases(std::size_t size) {
  std::vector<Case> out;
  std::vector<std::size_t> cuts = {0, 8, size - 1};
  for (std::size_t i = 1; i <= 40; ++i) cuts.push_back(size * i / 41);
  for (const std::size_t cut : cuts) {
    out.push_back({"checkpoint truncated to " + std::to_string(cut) + " of " + std::to_string(size),
                   "cut-" + std::to_string(cut) + ".h5", true, [cut](const auto& base) {
                     return std::vector<unsigned char>(base.begin(), base.begin() + cut);
                   }});
  }
  // Flipped bytes, dense over the first 2 KiB (superblock, root group and its attributes),
  // then spread over the rest (the arrays' chunks, their index, /metadata).
  std::vector<std::size_t> offsets;
  for (std::size_t o = 0; o < std::min<std::size_t>(2048, size); o += 23) offsets.push_back(o);
  for (std::size_t i = 0; i < 40; ++i) offsets.push_back(2048 + (size - 2048) * i / 40);
  const unsigned char masks[] = {0xFF, 0x01, 0x80, 0x10, 0x5A};
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    const std::size_t at = offsets[i];
    const unsigned char mask = masks[i % std::size(masks)];
    out.push_back({"checkpoint byte " + std::to_string(at) + " xor " + std::to_string(mask),
                   "flip-" + std::to_string(at) + ".h5", false, [at, mask](const auto& base) {
                     auto bytes = base;
                     bytes[at] ^= mask;
                     return bytes;
                   }});
  }
  out.push_back({"a text file named like a checkpoint", "text.h5", true, [](const auto&) {
                   const std::string text = "not a checkpoint\n";
                   return std::vector<unsigned char>(text.begin(), text.end());
                 }});
  return out;
}

}  // namespace

TEST_CASE("the checkpoint loader survives corrupted checkpoints") {
  ringdp::test::TempDir dir("hostile-ckpt");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const Checkpoint saved = sample(6 * 5 + 5 + 5 * 3 + 3);
  const std::string path = ringdp::train::save_checkpoint(comm, dir.file("valid"), saved, 1);
  std::vector<unsigned char> base;
  unsigned long long size = 0;
  if (ringdp::test::world_rank() == 0) {
    base = ringdp::test::hostile::read_bytes(path);
    size = base.size();
  }
  MPI_Bcast(&size, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  const std::vector<Case> all = cases(size);
  if (ringdp::test::world_rank() == 0) {
    for (const auto& c : all) ringdp::test::hostile::write_bytes(dir.file(c.file), c.make(base));
  }
  MPI_Barrier(MPI_COMM_WORLD);

  // The reference: the valid file loads back exactly.
  {
    bool ok = false;
    try {
      ok = differences(saved, ringdp::train::load_checkpoint(comm, path)).empty();
    } catch (const ringdp::Error& e) {
      UNSCOPED_INFO("valid checkpoint: " << e.what());
    }
    CHECK(all_ranks(ok));
  }

  const bool trace = std::getenv("HOSTILE_TRACE") != nullptr;
  ringdp::test::Watchdog watchdog(std::chrono::seconds(30));
  std::map<std::string, int> tally;
  for (const auto& c : all) {
    const std::string file = dir.file(c.file);
    if (trace)
      std::fprintf(stderr, "[rank %d] case %s\n", ringdp::test::world_rank(), c.name.c_str());
    watchdog.arm(c.name);
    bool error = false;
    bool collective = false;
    bool intact = false;
    std::string message;
    std::string foreign;
    std::string differs;
    try {
      differs = differences(saved, ringdp::train::load_checkpoint(comm, file));
      intact = differs.empty();
    } catch (const ringdp::Error& e) {
      error = true;
      collective = e.collective();
      message = e.what();
    } catch (const std::exception& e) {
      foreign = e.what();
    }
    watchdog.disarm();
    const bool ok =
        foreign.empty() &&
        (error ? collective && message.find(file) != std::string::npos : !c.must_fail && intact);
    const std::uint64_t kind = error ? 1 : (intact ? 2 : 3);
    const bool agreed = ringdp::test::same_on_all_ranks(
        ringdp::test::hash_bytes(message.data(), message.size()) ^ kind);
    INFO(c.name << " -> "
                << (error    ? "Error: " + message
                    : intact ? "loaded intact"
                             : "loaded, but differs in: " + differs)
                << (foreign.empty() ? "" : " / escaped non-ringdp exception: " + foreign));
    CHECK(all_ranks(ok));
    CHECK(agreed);
    ++tally[error ? "error" : (intact ? "intact" : "content differs")];
  }
  CHECK(all.size() >= 100);
  std::ostringstream summary;
  summary << all.size() << " hostile checkpoint variants:";
  for (const auto& [k, n] : tally) summary << " " << k << " " << n << ";";
  if (ringdp::test::world_rank() == 0) std::printf("%s\n", summary.str().c_str());
}
