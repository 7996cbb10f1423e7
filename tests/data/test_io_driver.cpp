// The two ways of opening a file, IoDriver::Serial (each rank on its own, direct chunk
// reads) and IoDriver::MpiIo (parallel HDF5 through MPI-IO): the loader delivers the same
// rows through both, bit for bit, equal to the HDF5 C API's; both agree on bad input.
// Run at 1, 2 and 3 ranks.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <numeric>

#include "data_fixture.hpp"
#include "mpi_test.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/error.hpp"
#include "ringdp/data/loader.hpp"

using ringdp::data::Batch;
using ringdp::data::DatasetOptions;
using ringdp::data::H5Dataset;
using ringdp::data::IoDriver;
using ringdp::data::SamplerOptions;
using ringdp::data::SamplingMode;
using ringdp::data::ShardedLoader;
using ringdp::test::all_ranks;
using ringdp::test::FileSpec;
using ringdp::test::matches_direct;
using ringdp::test::TempDir;

namespace {

DatasetOptions through(IoDriver driver) {
  DatasetOptions o;
  o.driver = driver;
  return o;
}

bool same_batch(const Batch& a, const Batch& b) {
  return a.indices == b.indices && a.labels == b.labels && a.real == b.real &&
         a.x.rows() == b.x.rows() && a.x.cols() == b.x.cols() &&
         std::memcmp(a.x.data(), b.x.data(), static_cast<std::size_t>(a.x.size()) * 4) == 0;
}

}  // namespace

TEST_CASE("serial and MPI-IO drivers deliver the same rows, equal to the C API's") {
  TempDir dir("io-driver");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  struct Case {
    const char* name;
    FileSpec spec;
  };
  // Uncompressed chunks of whole rows take the direct chunk read (serial driver), except
  // the dataset's last, partial chunk; the others go through HDF5 selections.
  std::vector<Case> cases(5);
  cases[0] = {"u8-plain.h5", FileSpec{}};
  cases[0].spec.gzip = 0;
  cases[0].spec.samples = 203;
  cases[1] = {"u8-gzip.h5", FileSpec{}};
  cases[2] = {"f32-plain.h5", FileSpec{}};
  cases[2].spec.float32 = true;
  cases[2].spec.gzip = 0;
  cases[3] = {"u8-contiguous.h5", FileSpec{}};
  cases[3].spec.chunk_rows = 0;
  cases[4] = {"u8-plain-image.h5", FileSpec{}};
  cases[4].spec.feature_shape = {3, 4};
  cases[4].spec.gzip = 0;
  cases[4].spec.samples = 90;  // divisible by the chunk rows: every chunk whole
  for (auto& c : cases) {
    const std::string path = dir.file(c.name);
    ringdp::test::write_file(path, c.spec);
    for (SamplingMode mode : {SamplingMode::Shard, SamplingMode::Global}) {
      if (mode == SamplingMode::Shard && c.spec.chunk_rows == 0) continue;  // one block only
      SamplerOptions s;
      s.mode = mode;
      s.batch_size = 7;
      s.seed = 3;
      // read_ahead 0: the tests' MPI runs at MPI_THREAD_SERIALIZED, and MPI-IO reads on
      // the loader's thread need MULTIPLE (checked below).
      ShardedLoader serial(comm, H5Dataset(comm, path, through(IoDriver::Serial)), s, {0, 0});
      ShardedLoader mpiio(comm, H5Dataset(comm, path, through(IoDriver::MpiIo)), s, {0, 0});
      bool ok = mpiio.dataset().driver() == IoDriver::MpiIo &&
                serial.steps_per_epoch() == mpiio.steps_per_epoch();
      std::size_t batches = 0;
      for (std::uint64_t epoch : {0ULL, 1ULL}) {
        serial.start_epoch(epoch);
        mpiio.start_epoch(epoch);
        Batch a;
        Batch b;
        while (serial.next(a)) {
          ok = ok && mpiio.next(b) && same_batch(a, b) && matches_direct(b, path, c.spec);
          ++batches;
        }
        ok = ok && !mpiio.next(b);
      }
      // Both read the same rows and bytes (the direct chunk read counts like a selection).
      ok = ok && batches == 2 * serial.steps_per_epoch() &&
           serial.counters().rows == mpiio.counters().rows &&
           serial.counters().bytes == mpiio.counters().bytes;
      INFO(c.name << " mode " << to_string(mode));
      CHECK(all_ranks(ok));
    }
  }
}

TEST_CASE("MPI-IO: bad input fails on every rank with the same Error, no hang") {
  TempDir dir("io-driver-bad");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  FileSpec spec;
  const std::string good = dir.file("good.h5");
  ringdp::test::write_file(good, spec);
  // Opening through MPI-IO is collective: a rank that cannot even reach H5Fopen (its file
  // is missing) must not leave the others waiting there.
  const std::string path =
      ringdp::test::world_rank() == comm.size() - 1 ? dir.file("absent.h5") : good;
  std::string message;
  bool collective = false;
  try {
    H5Dataset dataset(comm, path, through(IoDriver::MpiIo));
  } catch (const ringdp::Error& e) {
    message = e.what();
    collective = e.collective();
  }
  const std::string rank_text = "rank " + std::to_string(comm.size() - 1);
  const bool ok = collective && message.find("absent.h5") != std::string::npos &&
                  message.find("no such file") != std::string::npos &&
                  message.find(rank_text) != std::string::npos;
  if (!ok) UNSCOPED_INFO("message: " << message);
  CHECK(all_ranks(ok));
  CHECK(ringdp::test::same_on_all_ranks(ringdp::test::hash_bytes(message.data(), message.size())));

  // A missing dataset, found after the collective open.
  DatasetOptions missing = through(IoDriver::MpiIo);
  missing.names.images = "/nothing/images";
  message.clear();
  try {
    H5Dataset dataset(comm, good, missing);
  } catch (const ringdp::Error& e) {
    message = e.what();
  }
  CHECK(all_ranks(message.find("/nothing") != std::string::npos));
}

TEST_CASE("MPI-IO with a read-ahead thread needs MPI_THREAD_MULTIPLE, and says so") {
  TempDir dir("io-driver-thread");
  ringdp::Communicator comm(MPI_COMM_WORLD);
  FileSpec spec;
  const std::string path = dir.file("thread.h5");
  ringdp::test::write_file(path, spec);
  SamplerOptions s;
  s.mode = SamplingMode::Shard;
  s.batch_size = 5;
  const bool multiple = ringdp::Environment::thread_level() == ringdp::ThreadLevel::Multiple;
  std::string message;
  try {
    ShardedLoader loader(comm, H5Dataset(comm, path, through(IoDriver::MpiIo)), s, {2, 0});
    loader.start_epoch(0);
    Batch b;
    while (loader.next(b)) {
    }
  } catch (const ringdp::Error& e) {
    message = e.what();
  }
  // The test main asks for SERIALIZED; should MPI give MULTIPLE anyway, the loader works.
  const bool ok = multiple ? message.empty()
                           : message.find("'multiple'") != std::string::npos &&
                                 message.find("read-ahead") != std::string::npos;
  if (!ok) UNSCOPED_INFO("message: " << message);
  CHECK(all_ranks(ok));
}
