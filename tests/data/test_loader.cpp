// ShardedLoader on real HDF5 files: rows bit-identical to direct C API reads, shard
// ownership and I/O counters, virtual ranks, the cache, the bundled MNIST file.
#include <mpi.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <numeric>
#include <set>

#include "data_fixture.hpp"
#include "mpi_test.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/error.hpp"

using ringdp::data::Batch;
using ringdp::data::DatasetOptions;
using ringdp::data::H5Dataset;
using ringdp::data::LoaderOptions;
using ringdp::data::SamplerOptions;
using ringdp::data::SamplingMode;
using ringdp::data::ShardedLoader;
using ringdp::test::all_ranks;
using ringdp::test::FileSpec;
using ringdp::test::gather_all;
using ringdp::test::matches_direct;
using ringdp::test::TempDir;

namespace {

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::uint64_t> iota_vector(std::size_t n) {
  std::vector<std::uint64_t> v(n);
  std::iota(v.begin(), v.end(), std::uint64_t{0});
  return v;
}

// The real (non-padding) samples of a batch of one logical rank: padding positions come
// after every real one in an epoch, so they are the batch's last columns.
std::vector<std::uint64_t> real_indices(const Batch& b) {
  return {b.indices.begin(), b.indices.begin() + static_cast<std::ptrdiff_t>(b.real)};
}

// A hash of each column of the batch's matrix, in column order.
std::vector<std::uint64_t> column_hashes(const Batch& b) {
  std::vector<std::uint64_t> hashes;
  for (Eigen::Index c = 0; c < b.x.cols(); ++c) {
    hashes.push_back(ringdp::test::hash_bytes(
        b.x.col(c).data(), static_cast<std::size_t>(b.x.rows()) * sizeof(float)));
  }
  return hashes;
}

}  // namespace

TEST_CASE("rows delivered are bit-identical to direct HDF5 C API reads") {
  TempDir dir("loader-rows");
  const int r = ringdp::test::world_rank();
  ringdp::Communicator comm(MPI_COMM_WORLD);
  struct Case {
    const char* name;
    FileSpec spec;
  };
  std::vector<Case> cases(7);
  cases[0] = {"u8-gzip.h5", FileSpec{}};
  cases[1] = {"f32-plain.h5", FileSpec{}};
  cases[1].spec.float32 = true;
  cases[1].spec.gzip = 0;
  cases[2] = {"u8-contiguous.h5", FileSpec{}};
  cases[2].spec.chunk_rows = 0;
  cases[3] = {"u8-image-shape.h5", FileSpec{}};
  cases[3].spec.feature_shape = {3, 4};
  cases[3].spec.samples = 77;
  // Unfiltered chunks large enough for the loader to view them in the file's mapping
  // (H5Dataset::map_chunk); the small unfiltered cases above are copied instead.
  cases[4] = {"u8-mapped.h5", FileSpec{}};
  cases[4].spec.samples = 3000;
  cases[4].spec.feature_shape = {28, 28};
  cases[4].spec.chunk_rows = 64;
  cases[4].spec.gzip = 0;
  cases[5] = {"f32-mapped.h5", cases[4].spec};
  cases[5].spec.feature_shape = {196};
  cases[5].spec.float32 = true;
  // A resizable dataset holding fewer rows than one chunk: HDF5 stores the whole chunk,
  // longer than the rows, so neither a direct read nor a view of it applies.
  cases[6] = {"u8-long-chunk.h5", FileSpec{}};
  cases[6].spec.samples = 50;
  cases[6].spec.chunk_rows = 64;
  cases[6].spec.gzip = 0;
  cases[6].spec.resizable = true;
  for (auto& c : cases) {
    const std::string path = dir.file(c.name);
    ringdp::test::write_file(path, c.spec);
    for (SamplingMode mode : {SamplingMode::Global, SamplingMode::Shard}) {
      // Shard mode deals whole blocks: it needs at least one per rank.
      const bool one_block = c.spec.chunk_rows == 0 || c.spec.chunk_rows >= c.spec.samples;
      if (mode == SamplingMode::Shard && one_block && ringdp::test::world_size() > 1) continue;
      SamplerOptions s;
      s.mode = mode;
      s.batch_size = 7;
      s.seed = 5;
      ShardedLoader loader(comm, H5Dataset(comm, path), s, {2, 0});
      bool ok = loader.features() == std::accumulate(c.spec.feature_shape.begin(),
                                                     c.spec.feature_shape.end(), std::size_t{1},
                                                     std::multiplies<>());
      std::vector<std::uint64_t> seen;
      Batch b;
      loader.start_epoch(1);
      std::size_t steps = 0;
      while (loader.next(b)) {
        const bool same = matches_direct(b, path, c.spec);
        if (!same) UNSCOPED_INFO("step " << steps << " differs from direct reads");
        ok = ok && same && b.step == steps && b.epoch == 1;
        auto real = real_indices(b);
        seen.insert(seen.end(), real.begin(), real.end());
        ++steps;
      }
      if (steps != loader.steps_per_epoch()) UNSCOPED_INFO("steps " << steps);
      ok = ok && steps == loader.steps_per_epoch();
      INFO(c.name << " mode " << to_string(mode) << " rank " << r);
      CHECK(all_ranks(ok));
      CHECK(all_ranks(sorted(gather_all(seen)) == iota_vector(c.spec.samples)));
    }
  }
}

TEST_CASE("shard mode: each rank reads only its own chunks, once per epoch (counters)") {
  TempDir dir("loader-shard");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int k = comm.size();
  FileSpec spec;
  spec.samples = 1000;
  spec.chunk_rows = 16;
  spec.feature_shape = {20};
  const std::string path = dir.file("shard.h5");
  ringdp::test::write_file(path, spec);
  SamplerOptions s;
  s.mode = SamplingMode::Shard;
  s.batch_size = 10;
  s.seed = 11;
  s.shuffle_chunks = 3;
  ShardedLoader loader(comm, H5Dataset(comm, path), s, {3, 0});
  const auto& own = loader.sampler().owned_blocks(comm.rank());
  const std::set<std::size_t> own_set(own.begin(), own.end());
  std::size_t own_rows = 0;
  for (std::size_t blk : own) own_rows += std::min<std::size_t>(16, 1000 - blk * 16);
  // The share bound of the issue: N/k rows, plus one chunk.
  const std::size_t bound_rows =
      (1000 + static_cast<std::size_t>(k) - 1) / static_cast<std::size_t>(k) + 16;
  const std::size_t row_bytes = 20 + sizeof(std::int32_t);
  bool ok = true;
  std::uint64_t before = 0;
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch(epoch);
    Batch b;
    std::vector<std::uint64_t> seen;
    while (loader.next(b)) {
      for (std::uint64_t row : b.indices) ok = ok && own_set.count(row / 16) == 1;
      auto real = real_indices(b);
      seen.insert(seen.end(), real.begin(), real.end());
    }
    const auto counters = loader.counters();
    const std::uint64_t rows = counters.rows - before;
    before = counters.rows;
    // No cache: every owned chunk is read exactly once per epoch, nothing else.
    ok = ok && rows == own_rows && rows <= bound_rows;
    ok = ok && counters.bytes == counters.rows * row_bytes;
    ok = ok && counters.reads == (epoch + 1) * own.size();
    CHECK(all_ranks(sorted(gather_all(seen)) == iota_vector(1000)));
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("shard mode with a cache budget: the rank's rows are read once for the whole run") {
  TempDir dir("loader-cache");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  FileSpec spec;
  spec.samples = 500;
  spec.chunk_rows = 10;
  const std::string path = dir.file("cache.h5");
  ringdp::test::write_file(path, spec);
  SamplerOptions s;
  s.mode = SamplingMode::Shard;
  s.batch_size = 8;
  s.seed = 2;
  ShardedLoader cached(comm, H5Dataset(comm, path), s, {2, std::size_t{1} << 20});
  ShardedLoader uncached(comm, H5Dataset(comm, path), s, {0, 0});
  bool ok = true;
  std::uint64_t after_first = 0;
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    cached.start_epoch(epoch);
    uncached.start_epoch(epoch);
    Batch a;
    Batch b;
    while (cached.next(a)) {
      ok = ok && uncached.next(b) && a.indices == b.indices && a.x == b.x && a.labels == b.labels;
    }
    if (epoch == 0) after_first = cached.counters().rows;
  }
  ok = ok && cached.counters().rows == after_first && cached.cached_bytes() > 0;
  ok = ok && uncached.counters().rows == 3 * after_first;
  CHECK(all_ranks(ok));
}

TEST_CASE("global mode: rows read by a rank equal the rows it trains on") {
  TempDir dir("loader-global");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  FileSpec spec;
  spec.samples = 301;
  spec.chunk_rows = 16;
  const std::string path = dir.file("global.h5");
  ringdp::test::write_file(path, spec);
  SamplerOptions s;
  s.mode = SamplingMode::Global;
  s.batch_size = 9;
  s.seed = 4;
  bool ok = true;
  {
    ShardedLoader loader(comm, H5Dataset(comm, path), s, {2, 0});
    std::uint64_t trained = 0;
    for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
      loader.start_epoch(epoch);
      Batch b;
      while (loader.next(b)) trained += b.indices.size();
    }
    ok = ok && loader.counters().rows == trained;
  }
  {
    // With the whole dataset in the budget, later epochs read only rows never seen before.
    ShardedLoader loader(comm, H5Dataset(comm, path), s, {2, std::size_t{1} << 20});
    std::set<std::uint64_t> distinct;
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
      loader.start_epoch(epoch);
      Batch b;
      while (loader.next(b)) distinct.insert(b.indices.begin(), b.indices.end());
    }
    ok = ok && loader.counters().rows == distinct.size();
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("virtual ranks: one rank reproduces the k-rank batches step by step") {
  TempDir dir("loader-virtual");
  ringdp::Communicator world(MPI_COMM_WORLD);
  ringdp::Communicator self(MPI_COMM_SELF);
  const int k = world.size();
  FileSpec spec;
  spec.samples = 403;  // uneven shares: padding included
  spec.chunk_rows = 8;
  const std::string path = dir.file("virtual.h5");
  ringdp::test::write_file(path, spec);
  for (SamplingMode mode : {SamplingMode::Shard, SamplingMode::Global}) {
    for (bool evaluation : {false, true}) {
      SamplerOptions s;
      s.mode = mode;
      s.batch_size = 6;
      s.seed = 17;
      s.evaluation = evaluation;
      ShardedLoader real(world, H5Dataset(world, path), s, {2, 0});
      s.virtual_ranks = k;
      ShardedLoader one(self, H5Dataset(self, path), s, {2, 0});
      bool ok = real.steps_per_epoch() == one.steps_per_epoch();
      for (std::uint64_t epoch : {0ULL, 1ULL}) {
        real.start_epoch(epoch);
        one.start_epoch(epoch);
        Batch a;
        Batch b;
        while (real.next(a)) {
          ok = ok && one.next(b);
          // The virtual batch holds the k ranks' batches, real samples first: the real
          // columns of rank 0, 1, ..., k-1, then their padding columns in the same order.
          const auto real_end = static_cast<std::ptrdiff_t>(a.real);
          std::vector<std::uint64_t> expected =
              gather_all({a.indices.begin(), a.indices.begin() + real_end});
          const std::vector<std::uint64_t> padding =
              gather_all({a.indices.begin() + real_end, a.indices.end()});
          ok = ok && b.real == expected.size();
          expected.insert(expected.end(), padding.begin(), padding.end());
          ok = ok && expected == b.indices;
          // The same columns, bit for bit.
          const auto columns = column_hashes(a);
          std::vector<std::uint64_t> hashes =
              gather_all({columns.begin(), columns.begin() + real_end});
          const std::vector<std::uint64_t> padding_hashes =
              gather_all({columns.begin() + real_end, columns.end()});
          hashes.insert(hashes.end(), padding_hashes.begin(), padding_hashes.end());
          ok = ok && hashes == column_hashes(b);
        }
        ok = ok && !one.next(b);
      }
      INFO("mode " << to_string(mode) << " evaluation " << evaluation);
      CHECK(all_ranks(ok));
    }
  }
}

TEST_CASE("read-ahead depth and restarts do not change the stream") {
  TempDir dir("loader-depth");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  FileSpec spec;
  spec.samples = 200;
  spec.chunk_rows = 10;
  const std::string path = dir.file("depth.h5");
  ringdp::test::write_file(path, spec);
  SamplerOptions s;
  s.mode = SamplingMode::Shard;
  s.batch_size = 5;
  s.seed = 8;
  ShardedLoader sync(comm, H5Dataset(comm, path), s, {0, 0});
  bool ok = true;
  Batch a;
  Batch b;
  // Depths below, at and above the steps of an epoch (40 at 1 rank, 10 at 4): the consumer
  // waits for a full queue, or for the steps left when fewer remain.
  for (std::size_t depth : {1, 2, 3, 16}) {
    ShardedLoader deep(comm, H5Dataset(comm, path), s, {depth, 0});
    deep.start_epoch(0);  // abandoned after two batches
    ok = ok && deep.next(b) && deep.next(b);
    for (std::uint64_t epoch : {3ULL, 4ULL}) {
      sync.start_epoch(epoch);
      deep.start_epoch(epoch);
      while (sync.next(a)) ok = ok && deep.next(b) && a.indices == b.indices && a.x == b.x;
      ok = ok && !deep.next(b);
    }
  }
  CHECK(all_ranks(ok));
  const LoaderOptions one_ahead{1, 0};
  CHECK_THROWS_AS(ShardedLoader(comm, H5Dataset(comm, path), s, one_ahead).next(a),
                  ringdp::InvalidArgument);
}

TEST_CASE("the bundled MNIST file opens with the default names and matches direct reads") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const std::string path = RINGDP_SOURCE_DIR "/data/mnist10k.h5";
  H5Dataset train(comm, path);
  H5Dataset test(comm, path, DatasetOptions{ringdp::data::DatasetNames::test()});
  CHECK(all_ranks(train.size() == 8000 && test.size() == 2000 && train.features() == 784 &&
                  train.classes() == 10 && test.classes() == 10 &&
                  train.element_type() == ringdp::data::ElementType::UInt8));
  SamplerOptions s;
  s.batch_size = 100;
  s.evaluation = true;
  ShardedLoader loader(comm, std::move(test), s);
  loader.start_epoch(0);
  Batch b;
  bool ok = loader.next(b);
  FileSpec names;
  names.images = "/test/images";
  names.labels = "/test/labels";
  ok = ok && matches_direct(b, path, names);
  std::vector<int> histogram(10, 0);
  std::size_t total = b.labels.size();
  for (int label : b.labels) ++histogram[static_cast<std::size_t>(label)];
  while (loader.next(b)) {
    total += b.labels.size();
    for (int label : b.labels) ++histogram[static_cast<std::size_t>(label)];
  }
  std::vector<int> all(10);
  MPI_Allreduce(histogram.data(), all.data(), 10, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  // Every digit present in the test split (the split is a random permutation of 10,000).
  ok = ok && std::all_of(all.begin(), all.end(), [](int c) { return c > 100; });
  std::uint64_t sum = total;
  std::uint64_t everything = 0;
  MPI_Allreduce(&sum, &everything, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  ok = ok && everything == 2000;
  CHECK(all_ranks(ok));
}
