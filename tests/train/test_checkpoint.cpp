// HDF5 checkpoints: a run saved and resumed equals a run that never stopped, bit for bit;
// a wrong model or a corrupt file is the same clear error on every rank.

#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/train/checkpoint.hpp"
#include "ringdp/train/in_memory_source.hpp"
#include "ringdp/train/trainer.hpp"
#include "train_fixture.hpp"

namespace {

using ringdp::Communicator;
using ringdp::test::all_ranks;
using namespace ringdp::train;

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

std::string temp_path(const Communicator& comm, const std::string& name) {
  int pid = static_cast<int>(::getpid());
  MPI_Bcast(&pid, 1, MPI_INT, 0, comm.native());
  return (std::filesystem::temp_directory_path() /
          ("ringdp_ckpt_" + std::to_string(pid) + "_" + name))
      .string();
}

// Rank-collective: every rank threw an Error whose cause contains `needle`.
template <class Fn>
bool all_throw(Fn&& fn, const std::string& needle) {
  bool ok = false;
  try {
    fn();
  } catch (const ringdp::Error& e) {
    ok = e.cause().find(needle) != std::string::npos;
  }
  return all_ranks(ok);
}

}  // namespace

TEST_CASE("a run saved to an HDF5 checkpoint and resumed equals a run that never stopped",
          "[train][checkpoint]") {
  const Communicator world(MPI_COMM_WORLD);
  const std::string path = temp_path(world, "resume.h5");
  auto [x, labels] = ringdp::test::teacher_data(60, 8, 3, 6);
  const std::string spec = "8-7-3";
  const TrainerOptions options{
      .schedule = {.kind = ScheduleKind::Step, .base_lr = 0.1, .gamma = 0.5, .step_epochs = 1}};
  const ringdp::nn::SgdOptions sgd_options{.momentum = 0.9};
  auto make_source = [&] {
    return InMemorySource(x, labels, world.rank(), world.size(), {.batch_size = 5, .seed = 4});
  };

  auto straight = ringdp::nn::Sequential<float>::from_spec(spec);
  straight.initialize(1);
  ringdp::nn::Sgd<float> straight_sgd(straight.parameter_count(), sgd_options);
  {
    Trainer trainer(world, straight, straight_sgd, options);
    auto source = make_source();
    for (int e = 0; e < 4; ++e) trainer.train_epoch(source);
  }

  {
    auto first = ringdp::nn::Sequential<float>::from_spec(spec);
    first.initialize(1);
    ringdp::nn::Sgd<float> sgd(first.parameter_count(), sgd_options);
    Trainer trainer(world, first, sgd, options);
    auto source = make_source();
    for (int e = 0; e < 2; ++e) trainer.train_epoch(source);
    save_checkpoint(world, path, first, sgd,
                    {.model_spec = spec, .ranks = world.size(), .position = trainer.position()});
  }
  CHECK(all_ranks(std::filesystem::exists(path) && !std::filesystem::exists(path + ".tmp")));

  auto resumed = ringdp::nn::Sequential<float>::from_spec(spec);
  resumed.initialize(77);
  ringdp::nn::Sgd<float> resumed_sgd(resumed.parameter_count(), sgd_options);
  const CheckpointInfo info = load_checkpoint(world, path, resumed, resumed_sgd, spec);
  CHECK(all_ranks(info.position.epoch == 2 && info.position.step_in_epoch == 0 &&
                  info.ranks == world.size()));
  {
    Trainer trainer(world, resumed, resumed_sgd, options);
    trainer.set_position(info.position);
    auto source = make_source();
    while (trainer.position().epoch < 4) trainer.train_epoch(source);
  }
  CHECK(all_ranks(copy(resumed.parameters()) == copy(straight.parameters())));
  CHECK(all_ranks(resumed_sgd.step_count() == straight_sgd.step_count()));

  // A different model: every rank refuses, naming both specs; the model is left untouched.
  auto other = ringdp::nn::Sequential<float>::from_spec("8-9-3");
  other.initialize(5);
  const auto before = copy(other.parameters());
  ringdp::nn::Sgd<float> other_sgd(other.parameter_count(), sgd_options);
  CHECK(all_throw([&] { (void)load_checkpoint(world, path, other, other_sgd, "8-9-3"); },
                  "it holds model '8-7-3', the run uses '8-9-3'"));
  CHECK(all_ranks(copy(other.parameters()) == before));

  // A corrupt file (truncated to its first bytes): every rank refuses.
  world.barrier();
  const std::string corrupt = path + ".corrupt";
  if (world.rank() == 0) {
    std::ifstream in(path, std::ios::binary);
    std::string head(100, '\0');
    in.read(head.data(), 100);
    std::ofstream(corrupt, std::ios::binary) << head;
  }
  world.barrier();
  auto again = ringdp::nn::Sequential<float>::from_spec(spec);
  ringdp::nn::Sgd<float> again_sgd(again.parameter_count(), sgd_options);
  CHECK(all_throw([&] { (void)load_checkpoint(world, corrupt, again, again_sgd, spec); },
                  "checkpoint '"));
  CHECK(all_throw([&] { (void)load_checkpoint(world, path + ".missing", again, again_sgd, spec); },
                  "no such file"));
  world.barrier();
  if (world.rank() == 0) {
    std::filesystem::remove(path);
    std::filesystem::remove(corrupt);
  }
}
