// A data error on one rank (its batch source throws, ends early, or a chunk of the HDF5
// file is corrupted after the loader opened it) becomes the same collective Error on every
// rank, naming the failing rank and the cause, instead of a rank-local exception that
// leaves the other ranks waiting in the next collective (a hang: the CTest TIMEOUT).
// Run at 1 and 3 ranks.

#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/hdf5_lock.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/data/synth.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/parallel_mlp.hpp"
#include "ringdp/train/parallel_replica.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/loader_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Communicator;
using ringdp::test::all_ranks;
using namespace ringdp;

// An in-memory source that fails on rank `bad_rank` when asked for batch `bad_step`:
// by throwing an IoError worded like the loader's, or by ending early; or, before any
// batch, when the epoch starts or when asked for its real counts. With `announce`
// it tells the trainer its real counts in advance (real_per_step), which moves the
// step's metrics allreduce after the gradient reduction: both orders are tested.
class FailingSource final : public train::BatchSource {
 public:
  enum class How { Throw, End, ThrowOnStart, ThrowOnCounts };
  FailingSource(train::InMemorySource inner, int rank, int bad_rank, std::size_t bad_step, How how,
                bool announce)
      : inner_(std::move(inner)),
        fails_(rank == bad_rank),
        bad_step_(bad_step),
        how_(how),
        announce_(announce) {}
  [[nodiscard]] std::vector<std::size_t> real_per_step() const override {
    if (fails_ && how_ == How::ThrowOnCounts) throw std::runtime_error("counts unavailable");
    return announce_ ? inner_.real_per_step() : std::vector<std::size_t>{};
  }
  [[nodiscard]] std::size_t steps_per_epoch() const override { return inner_.steps_per_epoch(); }
  void start_epoch(std::uint64_t epoch) override {
    if (fails_ && how_ == How::ThrowOnStart) {
      throw IoError("'fake.h5': cannot open file for epoch " + std::to_string(epoch));
    }
    inner_.start_epoch(epoch);
    step_ = 0;
  }
  bool next(train::Batch& batch) override {
    if (fails_ && step_ == bad_step_) {
      if (how_ == How::End) return false;
      throw IoError("'fake.h5': dataset '/train/images': cannot read 16 rows from row 48");
    }
    ++step_;
    return inner_.next(batch);
  }

 private:
  train::InMemorySource inner_;
  bool fails_;
  std::size_t bad_step_;
  How how_;
  bool announce_;
  std::size_t step_ = 0;
};

struct Outcome {
  bool threw = false;
  bool collective = false;
  int rank = -2;
  std::string message;
  ErrorKind kind = ErrorKind::Generic;
};

template <class Fn>
Outcome attempt(Fn&& fn) {
  Outcome o;
  try {
    fn();
  } catch (const Error& e) {
    o = {true, e.collective(), e.rank(), e.what(), e.kind()};
  }
  return o;
}

// Every rank threw the same collective Error, from `rank`, of the failing rank's class
// `kind`, whose text holds every part.
bool agreed(const Outcome& o, int rank, ErrorKind kind, std::initializer_list<std::string> parts) {
  bool ok = o.threw && o.collective && o.rank == rank && o.kind == kind;
  for (const std::string& p : parts) ok = ok && o.message.find(p) != std::string::npos;
  if (!ok) UNSCOPED_INFO("rank " << test::world_rank() << ": " << o.message);
  const bool everywhere = all_ranks(ok);
  return everywhere &&
         test::same_on_all_ranks(test::hash_bytes(o.message.data(), o.message.size()));
}

std::uint64_t parameter_hash(const nn::Sequential<float>& model) {
  const auto p = model.parameters();
  return test::hash_bytes(p.data(), p.size() * sizeof(float));
}

}  // namespace

TEST_CASE("a batch source failing on one rank stops every rank with the same Error") {
  const Communicator world(MPI_COMM_WORLD);
  const int last = world.size() - 1;
  auto [x, labels] = test::teacher_data(120, 10, 3, 4);
  for (const auto how : {FailingSource::How::Throw, FailingSource::How::End})
    for (const bool announce : {false, true}) {
      CAPTURE(announce);
      auto model = nn::Sequential<float>::from_spec("10-8-3");
      model.initialize(3);
      nn::Sgd<float> sgd(model.parameter_count());
      train::Trainer trainer(world, model, sgd);
      FailingSource source(train::InMemorySource(x, labels, world.rank(), world.size(),
                                                 {.batch_size = 4, .seed = 1}),
                           world.rank(), last, 3, how, announce);
      const Outcome o = attempt([&] { trainer.train_epoch(source); });
      const std::string cause = how == FailingSource::How::Throw
                                    ? "batch 3 of the epoch: 'fake.h5': dataset '/train/images'"
                                    : "ended after 3 of";
      // The failing rank's class on every rank: its IoError stays an IoError.
      const ErrorKind kind = how == FailingSource::How::Throw ? ErrorKind::Io : ErrorKind::Generic;
      CHECK(agreed(o, last, kind, {"rank " + std::to_string(last), cause}));
      // Stopped before the optimizer: no rank applied an update for step 3, all hold the
      // same parameters, and the trainer counted the three good steps only.
      CHECK(test::same_on_all_ranks(parameter_hash(model)));
      CHECK(all_ranks(trainer.position().global_step == 3));
    }
}

TEST_CASE("a source failing to start its epoch on one rank: the same Error everywhere") {
  // The trainer's start_epoch() calls the source's start_epoch() and real_per_step() on
  // every rank before the allreduce of the real-count table; a throw there on one rank
  // alone must not leave the others waiting in that allreduce.
  const Communicator world(MPI_COMM_WORLD);
  const int last = world.size() - 1;
  auto [x, labels] = test::teacher_data(60, 10, 3, 4);
  for (const auto how : {FailingSource::How::ThrowOnStart, FailingSource::How::ThrowOnCounts}) {
    const bool on_start = how == FailingSource::How::ThrowOnStart;
    CAPTURE(on_start);
    auto model = nn::Sequential<float>::from_spec("10-8-3");
    model.initialize(3);
    nn::Sgd<float> sgd(model.parameter_count());
    train::Trainer trainer(world, model, sgd);
    trainer.set_position({.epoch = 2, .step_in_epoch = 0, .global_step = 0});
    FailingSource source(
        train::InMemorySource(x, labels, world.rank(), world.size(), {.batch_size = 4, .seed = 1}),
        world.rank(), last, 0, how, true);
    const Outcome o = attempt([&] { trainer.start_epoch(source); });
    const std::string cause =
        on_start ? "'fake.h5': cannot open file for epoch 2" : "counts unavailable";
    CHECK(agreed(o, last, on_start ? ErrorKind::Io : ErrorKind::Generic,
                 {"rank " + std::to_string(last), "starting epoch 2", cause}));
    // No epoch is begun: train_step() refuses on every rank, and the position is untouched.
    bool refused = false;
    try {
      trainer.train_step(source);
    } catch (const InvalidArgument& e) {
      refused = std::string(e.what()).find("start_epoch") != std::string::npos;
    }
    CHECK(all_ranks(refused));
    CHECK(all_ranks(trainer.position().epoch == 2 && trainer.position().global_step == 0));
  }
}

TEST_CASE("a source failing on one rank during evaluation: the same Error everywhere") {
  const Communicator world(MPI_COMM_WORLD);
  const int last = world.size() - 1;
  auto [x, labels] = test::teacher_data(90, 10, 3, 6);
  auto model = nn::Sequential<float>::from_spec("10-8-3");
  model.initialize(3);
  nn::Sgd<float> sgd(model.parameter_count());
  train::Trainer trainer(world, model, sgd);
  FailingSource source(train::InMemorySource(x, labels, world.rank(), world.size(),
                                             {.batch_size = 5, .evaluation = true}),
                       world.rank(), last, 2, FailingSource::How::Throw, false);
  const Outcome o = attempt([&] { trainer.evaluate(source); });
  CHECK(agreed(o, last, ErrorKind::Io,
               {"rank " + std::to_string(last), "evaluation batch 2", "fake.h5"}));
}

TEST_CASE("a chunk corrupted after the loader opened the file: every rank throws its Error") {
  const Communicator world(MPI_COMM_WORLD);
  const int last = world.size() - 1;
  int pid = static_cast<int>(::getpid());
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("ringdp_test_data_errors_" + std::to_string(pid) + ".h5"))
                               .string();
  // gzip: a chunk whose zlib header is overwritten fails to inflate (an uncompressed chunk
  // would be read back as wrong values, which no reader can tell from right ones).
  data::synthesize(world, path,
                   {.samples = 480, .features = 12, .classes = 3, .seed = 2, .chunk_rows = 16});
  {
    data::SamplerOptions sampling{.mode = data::SamplingMode::Shard, .batch_size = 8, .seed = 4};
    data::ShardedLoader loader(world, data::H5Dataset(world, path), sampling,
                               {.read_ahead = 3, .cache_bytes = 0});
    // The last block the last rank visits in epoch 0: it fails after many good steps.
    const data::RankEpoch plan = loader.sampler().epoch(last, 0);
    const std::size_t block = plan.windows.back().blocks.back();
    if (world.rank() == 0) {
      // Where the chunk lies in the file, from the HDF5 C API (under ringdp's HDF5 lock:
      // the loader's thread may be inside HDF5).
      std::lock_guard lock(io::hdf5_mutex());
      const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      const hid_t images = H5Dopen2(file, "/train/images", H5P_DEFAULT);
      const hsize_t offset[2] = {block * 16, 0};
      haddr_t address = 0;
      hsize_t size = 0;
      H5Dget_chunk_info_by_coord(images, offset, nullptr, &address, &size);
      H5Dclose(images);
      H5Fclose(file);
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(address));
      const std::string garbage(std::min<hsize_t>(size, 8), '\xff');
      f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    MPI_Barrier(MPI_COMM_WORLD);

    train::LoaderSource source(loader);
    auto model = nn::Sequential<float>::from_spec("12-8-3");
    model.initialize(5);
    nn::Sgd<float> sgd(model.parameter_count());
    train::Trainer trainer(world, model, sgd);
    const Outcome o = attempt([&] { trainer.train_epoch(source); });
    CHECK(agreed(o, last, ErrorKind::Io,
                 {"rank " + std::to_string(last), path, "/train/images", "cannot read"}));
    CHECK(test::same_on_all_ranks(parameter_hash(model)));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (world.rank() == 0) std::filesystem::remove(path);
}

TEST_CASE("a source failing during evaluation inside a split replica: no rank left waiting") {
  // The model split over every rank (tensor parallel): each evaluation batch is a
  // collective of the replica, so a rank whose source fails must not leave the others
  // inside one.
  const Communicator world(MPI_COMM_WORLD);
  const int last = world.size() - 1;
  const parallel::Grid grid(world, /*tensor=*/world.size(), /*pipeline=*/1);
  parallel::ParallelMlp<float> mlp(grid, "10-12-3");
  mlp.initialize(3);
  train::ParallelReplica replica(mlp);
  nn::Sgd<float> sgd(mlp.model().parameter_count());
  train::Trainer trainer(grid.data(), replica, sgd);
  auto [x, labels] = test::teacher_data(90, 10, 3, 6);
  // Every rank of the replica reads the data group's shard (one group: all of it).
  FailingSource source(train::InMemorySource(x, labels, grid.data().rank(), grid.data().size(),
                                             {.batch_size = 5, .evaluation = true}),
                       world.rank(), last, 2, FailingSource::How::Throw, false);
  const Outcome o = attempt([&] { trainer.evaluate(source); });
  CHECK(agreed(o, last, ErrorKind::Io,
               {"rank " + std::to_string(last), "evaluation batch 2", "fake.h5"}));
}
