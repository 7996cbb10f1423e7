// The data x tensor x pipeline grid (groups, rank order, bad shapes on every rank) and
// the MLP layout (stages, splits, the map onto the unsplit arena, initialisation).

#include <catch2/catch.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "parallel_fixture.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/parallel/full_arena.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/mlp_layout.hpp"
#include "ringdp/parallel/slice.hpp"

namespace {

using ringdp::Communicator;
using ringdp::test::all_ranks;
namespace nn = ringdp::nn;
namespace parallel = ringdp::parallel;

// The world ranks of a group, in the group's order, on every rank of it.
std::vector<std::int64_t> members(const Communicator& group, int world_rank) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(group.size()));
  const std::int64_t mine = world_rank;
  ringdp::allgather<std::int64_t>(group, std::span<const std::int64_t>(&mine, 1), all);
  return all;
}

bool strided(const std::vector<std::int64_t>& ranks, std::int64_t stride) {
  for (std::size_t i = 1; i < ranks.size(); ++i) {
    if (ranks[i] - ranks[i - 1] != stride) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("split_evenly deals widths out with sizes differing by at most one", "[parallel]") {
  CHECK(parallel::split_evenly(10, 4, 0) == parallel::Slice{0, 3});
  CHECK(parallel::split_evenly(10, 4, 1) == parallel::Slice{3, 3});
  CHECK(parallel::split_evenly(10, 4, 2) == parallel::Slice{6, 2});
  CHECK(parallel::split_evenly(10, 4, 3) == parallel::Slice{8, 2});
  CHECK(parallel::split_evenly(7, 1, 0) == parallel::Slice{0, 7});
  CHECK_THROWS_AS(parallel::split_evenly(7, 2, 2), ringdp::InvalidArgument);
}

TEST_CASE("every grid shape that divides the world: groups, coordinates, rank order",
          "[parallel][grid]") {
  const Communicator world(MPI_COMM_WORLD);
  const int n = world.size();
  for (int t = 1; t <= n; ++t) {
    for (int p = 1; t * p <= n; ++p) {
      if (n % (t * p) != 0) continue;
      const parallel::Grid grid(world, t, p);
      const parallel::GridCoordinates at = grid.coordinates();
      CAPTURE(t, p, grid.describe());
      CHECK(grid.data_size() * t * p == n);
      bool ok = grid.rank_of(at) == world.rank() && grid.coordinates_of(world.rank()) == at;
      ok = ok && grid.data().rank() == at.data && grid.tensor().rank() == at.tensor &&
           grid.pipeline().rank() == at.pipeline &&
           grid.model().rank() == at.tensor + t * at.pipeline;
      ok = ok && grid.data().size() == grid.data_size() && grid.tensor().size() == t &&
           grid.pipeline().size() == p && grid.model().size() == t * p;
      // Tensor ranks adjacent, data ranks strided by T, pipeline ranks by T x D.
      ok = ok && strided(members(grid.tensor(), world.rank()), 1);
      ok = ok && strided(members(grid.data(), world.rank()), t);
      ok = ok && strided(members(grid.pipeline(), world.rank()), t * grid.data_size());
      CHECK(all_ranks(ok));
    }
  }
}

TEST_CASE("a grid that does not divide the world, or differs between ranks, fails on every rank",
          "[parallel][grid]") {
  const Communicator world(MPI_COMM_WORLD);
  std::string message;
  try {
    parallel::Grid grid(world, world.size() + 1, 1);
  } catch (const ringdp::InvalidArgument& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(all_ranks(message.find("do not divide the") != std::string::npos));
  message.clear();
  try {
    parallel::Grid grid(world, 1, 0);
  } catch (const ringdp::InvalidArgument& e) {
    message = e.what();
  }
  CHECK(all_ranks(message.find("at least 1") != std::string::npos));
  if (world.size() < 2) return;
  message.clear();
  try {
    parallel::Grid grid(world, world.rank() == 1 ? 2 : 1, 1);
  } catch (const ringdp::InvalidArgument& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(all_ranks(message.find("rank 1 asks for tensor 2 x pipeline 1") != std::string::npos));
}

TEST_CASE("MLP layout: stages balance parameters, pairs split, bad shapes are errors",
          "[parallel][layout]") {
  const auto layout = parallel::MlpLayout::from_spec("784-512-256-10", 2, 2);
  // 401,920 | 131,328 + 2,570: the first layer alone is the heavier stage.
  CHECK(layout.first_dense(0) == 0);
  CHECK(layout.end_dense(0) == 1);
  CHECK(layout.end_dense(1) == 3);
  CHECK(layout.stage_inputs(1) == 512);
  CHECK(layout.dense_layers()[0].split == parallel::DenseSplit::Replicated);  // alone in its stage
  CHECK(layout.dense_layers()[1].split == parallel::DenseSplit::Column);
  CHECK(layout.dense_layers()[2].split == parallel::DenseSplit::Row);
  const auto tp = parallel::MlpLayout::from_spec("784-512-256-10", 4, 1);
  CHECK(tp.dense_layers()[0].split == parallel::DenseSplit::Column);
  CHECK(tp.dense_layers()[1].split == parallel::DenseSplit::Row);
  CHECK(tp.dense_layers()[2].split == parallel::DenseSplit::Replicated);
  CHECK(tp.full_parameter_count() == 535818);
  // 784 x 128 + 128 and 128 x 256 per rank, the 256 bias and 256 x 10 + 10 replicated.
  CHECK(tp.parameter_count(0, 3) == 784 * 128 + 128 + 128 * 256 + 256 + 2570);
  CHECK_THROWS_WITH(parallel::MlpLayout::from_spec("784-512-256-10", 1, 4),
                    Catch::Contains("cannot be cut into 4 pipeline stages"));
  CHECK_THROWS_WITH(parallel::MlpLayout::from_spec("784-3-10", 4, 1),
                    Catch::Contains("would split a width of 3"));
  CHECK_THROWS_AS(parallel::MlpLayout::from_spec("784-10", 0, 1), ringdp::InvalidArgument);
}

TEST_CASE("MLP layout: every element of the unsplit arena has exactly one source",
          "[parallel][layout]") {
  for (const auto& [t, p] : {std::pair{1, 1}, {2, 1}, {3, 2}, {4, 4}, {2, 3}}) {
    const parallel::MlpLayout layout({9, 12, 11, 8, 5}, t, p);
    std::vector<int> sources(layout.full_parameter_count(), 0);
    std::size_t total = 0;
    for (int s = 0; s < p; ++s) {
      for (int r = 0; r < t; ++r) {
        std::size_t local = 0;
        for (const auto& run : layout.arena_runs(s, r)) {
          CHECK(run.local_offset == local);  // the runs tile the local arena in order
          local += run.count;
          if (run.replicated && r != 0) continue;
          for (std::size_t i = 0; i < run.count; ++i) ++sources[run.full_offset + i];
        }
        CHECK(local == layout.parameter_count(s, r));
        total += local;
      }
    }
    CAPTURE(t, p);
    CHECK(std::all_of(sources.begin(), sources.end(), [](int c) { return c == 1; }));
    CHECK(total >= layout.full_parameter_count());
  }
}

TEST_CASE("MLP layout: each rank's model is its part of the unsplit initialisation",
          "[parallel][layout]") {
  // On every grid this run's rank count allows: the built model's arena has the layout's
  // size, and after initialize() holds exactly scatter_full() of the unsplit model's.
  const Communicator world(MPI_COMM_WORLD);
  const std::string spec = "9-12-11-8-5";
  auto full = nn::Sequential<float>::from_spec(spec);
  full.initialize(77);
  for (int t = 1; t <= world.size(); ++t) {
    for (int p = 1; p <= 4 && t * p <= world.size(); ++p) {
      if (world.size() % (t * p) != 0) continue;
      const parallel::Grid grid(world, t, p);
      const auto layout = parallel::MlpLayout::from_spec(spec, t, p);
      const auto at = grid.coordinates();
      auto model = layout.build<float>(grid.tensor(), at.pipeline);
      layout.initialize(model, at.pipeline, 77);
      std::vector<float> expected(layout.parameter_count(at.pipeline, at.tensor));
      parallel::scatter_full<float>(layout, at.pipeline, at.tensor, full.parameters(), expected);
      bool same = expected.size() == model.parameter_count() &&
                  std::equal(expected.begin(), expected.end(), model.parameters().begin());
      // And back: the gathered arena is the unsplit one, bit for bit.
      std::vector<float> gathered(layout.full_parameter_count());
      parallel::gather_full<float>(grid, layout, model.parameters(), gathered);
      same = same && std::equal(gathered.begin(), gathered.end(), full.parameters().begin());
      CAPTURE(t, p);
      CHECK(all_ranks(same));
    }
  }
}
