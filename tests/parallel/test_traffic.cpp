// The byte cost model (ringdp/parallel/traffic.hpp) against bytes counted: this test
// program defines MPI_Send, MPI_Isend and MPI_Ibcast itself (MPI's profiling interface),
// so every send of ringdp's allreduce algorithms and pipeline stages is counted on its
// way to PMPI_*.

#include <mpi.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mpi_test.hpp"
#include "parallel_fixture.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/parallel/grid.hpp"
#include "ringdp/parallel/mlp_layout.hpp"
#include "ringdp/parallel/pipeline_stage.hpp"
#include "ringdp/parallel/traffic.hpp"

namespace {

std::atomic<std::int64_t> g_sent{0};

void count(int count, MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  g_sent += static_cast<std::int64_t>(count) * size;
}

// Bytes this rank sent while `fn` ran, gathered: {mean, max} over the ranks of `comm`.
template <class Fn>
ringdp::parallel::RankBytes counted(const ringdp::Communicator& comm, Fn&& fn) {
  comm.barrier();
  g_sent = 0;
  fn();
  const std::int64_t mine = g_sent.load();
  std::vector<std::int64_t> all(static_cast<std::size_t>(comm.size()));
  PMPI_Allgather(&mine, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, comm.native());
  ringdp::parallel::RankBytes bytes;
  for (std::int64_t b : all) {
    bytes.mean += static_cast<double>(b) / static_cast<double>(all.size());
    bytes.max = std::max(bytes.max, static_cast<double>(b));
  }
  return bytes;
}

}  // namespace

extern "C" int MPI_Send(const void* buf, int n, MPI_Datatype type, int dest, int tag,
                        MPI_Comm comm) {
  count(n, type);
  return PMPI_Send(buf, n, type, dest, tag, comm);
}

extern "C" int MPI_Isend(const void* buf, int n, MPI_Datatype type, int dest, int tag,
                         MPI_Comm comm, MPI_Request* request) {
  count(n, type);
  return PMPI_Isend(buf, n, type, dest, tag, comm, request);
}

// The parameter server returns the result with MPI_Ibcast, whose tree is MPI's choice; any
// tree without segmentation moves (n - 1) x N bytes in all, counted here at the root.
extern "C" int MPI_Ibcast(void* buf, int n, MPI_Datatype type, int root, MPI_Comm comm,
                          MPI_Request* request) {
  int rank = 0, size = 0;
  PMPI_Comm_rank(comm, &rank);
  PMPI_Comm_size(comm, &size);
  if (rank == root) count(n * (size - 1), type);
  return PMPI_Ibcast(buf, n, type, root, comm, request);
}

namespace parallel = ringdp::parallel;
using ringdp::Algorithm;
using ringdp::Communicator;
using ringdp::test::all_ranks;

TEST_CASE("ring, recursive doubling and parameter server send the bytes of the cost model",
          "[parallel][traffic]") {
  const Communicator world(MPI_COMM_WORLD);
  for (const Algorithm a :
       {Algorithm::Ring, Algorithm::RecursiveDoubling, Algorithm::ParameterServer}) {
    for (const std::size_t n : {1u, 1001u, 65536u}) {
      std::vector<float> data(n, 1.0f);
      ringdp::allreduce<float>(world, data, ringdp::ReduceOp::Sum, a);  // first call: agreement
      const auto sent =
          counted(world, [&] { ringdp::allreduce<float>(world, data, ringdp::ReduceOp::Sum, a); });
      const auto model = parallel::allreduce_bytes_sent(a, n * sizeof(float), world.size());
      CAPTURE(ringdp::to_string(a), n, sent.mean, model.mean, sent.max, model.max);
      // The ring's chunks differ by one element when n does not divide: the busiest rank
      // may send a few elements more than the mean.
      const bool ok = std::abs(sent.mean - model.mean) <= 1e-9 * (1 + model.mean) &&
                      std::abs(sent.max - model.max) <= 2.0 * (world.size() - 1) * sizeof(float);
      CHECK(all_ranks(ok));
    }
  }
}

TEST_CASE("a tensor-parallel and a pipeline step send the bytes of the cost model",
          "[parallel][traffic]") {
  const Communicator world(MPI_COMM_WORLD);
  const std::vector<std::size_t> widths = {13, 24, 12, 24, 5};
  constexpr std::size_t kBatch = 6;
  // Recursive doubling: messages whatever the node layout. Auto: shm when the tensor group
  // shares one node (no message at all), which the model must know too.
  for (const Algorithm algorithm : {Algorithm::RecursiveDoubling, Algorithm::Auto})
    for (const auto& [t, p] : {std::pair{world.size(), 1}, {1, world.size()}}) {
      if (p > 4) continue;
      const parallel::Grid grid(world, t, p);
      const parallel::MlpLayout layout(widths, t, p);
      const int stage = grid.coordinates().pipeline;
      auto model = layout.build<double>(grid.tensor(), stage, algorithm);
      layout.initialize(model, stage, 5);
      parallel::PipelineStage<double> pipeline(grid.pipeline(), model, 3);
      const auto x = ringdp::test::random_matrix(13, kBatch, 1);
      const auto r = ringdp::test::random_matrix(5, kBatch, 2);
      auto loss = [&](const ringdp::nn::Matrix<double>&, parallel::Slice c,
                      ringdp::nn::Matrix<double>& g) {
        g = r.middleCols(static_cast<Eigen::Index>(c.offset), static_cast<Eigen::Index>(c.size));
        return ringdp::nn::LossResult{};
      };
      pipeline.step(x, kBatch, loss);  // first collectives of the groups: agreements
      const auto sent = counted(world, [&] { pipeline.step(x, kBatch, loss); });
      const parallel::StepTraffic model_bytes = parallel::step_traffic(
          layout, stage, kBatch, sizeof(double), algorithm, &grid.tensor().node_layout());
      // What this rank should have sent; the test compares the mean over the world.
      const double mine = model_bytes.tensor + model_bytes.pipeline;
      std::vector<double> all(static_cast<std::size_t>(world.size()));
      PMPI_Allgather(&mine, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, world.native());
      double expected = 0.0;
      for (double b : all) expected += b / static_cast<double>(all.size());
      CAPTURE(to_string(algorithm), t, p, sent.mean, expected, model_bytes.tensor_allreduces);
      const bool messages =
          algorithm != Algorithm::Auto || p > 1 || !grid.tensor().node_layout().one_node();
      CHECK(all_ranks(std::abs(sent.mean - expected) <= 1e-9 * (1 + expected) &&
                      (expected > 0) == messages));
    }
}
