#include "parallelism.hpp"

#include <fmt/format.h>

#include <array>

#include "console.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/parallel/traffic.hpp"

namespace ringdp_train {
namespace {

namespace parallel = ringdp::parallel;
using ringdp::Algorithm;

enum Group { kData, kTensor, kPipeline, kMemory, kFields };

// Bytes this rank sends per step averaging its gradients over the data group: the
// trainer's reductions, each with the algorithm the reducer resolves for its size.
double data_bytes(const ringdp::train::Trainer& trainer) {
  const ringdp::Communicator& data = trainer.communicator();
  double bytes = 0.0;
  for (const ringdp::ReductionUnit& unit : trainer.reducer().units()) {
    const Algorithm a = ringdp::resolve_algorithm(trainer.options().algorithm, unit.bytes,
                                                  data.size(), data.node_layout());
    const parallel::RankBytes sent = parallel::allreduce_bytes_sent(a, unit.bytes, data.size());
    // The parameter server's root carries the broadcast: count the busiest rank.
    bytes += a == Algorithm::ParameterServer ? sent.max : sent.mean;
  }
  return bytes;
}

std::string grid_line(const Options& o, const ringdp::Communicator& world,
                      const parallel::Grid* grid) {
  if (grid == nullptr) {
    return fmt::format("  grid        data {} x tensor 1 x pipeline 1 (--tp 1 --pp 1)",
                       world.size());
  }
  const std::string micro = grid->pipeline_size() > 1
                                ? fmt::format("; {} micro-batch{} per step (1F1B)", o.micro_batches,
                                              o.micro_batches == 1 ? "" : "es")
                                : "";
  return fmt::format("  grid        data {} x tensor {} x pipeline {}{}", grid->data_size(),
                     grid->tensor_size(), grid->pipeline_size(), micro);
}

// "1.2 MB", "- (1 rank)", or "0 B (shared memory)" for a group whose ranks share a node.
std::string group_bytes(double bytes, int ranks) {
  if (ranks <= 1) return "- (1 rank)";
  return bytes > 0 ? format_bytes(bytes) : "0 B (shared memory)";
}

}  // namespace

std::unique_ptr<parallel::Grid> make_grid(const ringdp::Communicator& world, const Options& o) {
  if (o.tp == 1 && o.pp == 1) return nullptr;
  return std::make_unique<parallel::Grid>(world, o.tp, o.pp);
}

std::vector<std::string> parallelism_lines(const ringdp::Communicator& world, const Options& o,
                                           const parallel::Grid* grid, Model& model,
                                           const ringdp::train::Trainer& trainer) {
  std::array<double, kFields> mine{};
  mine[kData] = data_bytes(trainer);
  if (grid != nullptr) {
    const std::size_t per_replica = o.batch;  // the loader's batch: one per data rank
    const parallel::StepTraffic t =
        parallel::step_traffic(model.split->layout(), grid->coordinates().pipeline, per_replica,
                               sizeof(float), Algorithm::Auto, &grid->tensor().node_layout());
    mine[kTensor] = t.tensor;
    mine[kPipeline] = t.pipeline;
  }
  // Parameters and the optimizer's state arrays, each one float per parameter.
  const std::size_t arrays = 1 + model.optimizer->state().size();
  mine[kMemory] = static_cast<double>(model.local().parameter_count() * arrays * sizeof(float));
  ringdp::allreduce<double>(world, mine, ringdp::ReduceOp::Max,
                            ringdp::Algorithm::RecursiveDoubling);
  const double unsplit = static_cast<double>(model.full_parameter_count() * arrays * sizeof(float));
  std::vector<std::string> lines;
  lines.push_back(grid_line(o, world, grid));
  lines.push_back(fmt::format(
      "  traffic     per step, busiest rank: data {} (gradients), tensor {} (activations), "
      "pipeline {} (activations and their gradients)",
      group_bytes(mine[kData], trainer.communicator().size()),
      group_bytes(mine[kTensor], grid ? grid->tensor_size() : 1),
      group_bytes(mine[kPipeline], grid ? grid->pipeline_size() : 1)));
  lines.push_back(fmt::format(
      "  memory      parameters + optimizer state {} bytes on the largest rank ({:.0f}% of the "
      "unsplit {} bytes)",
      format_count(static_cast<std::int64_t>(mine[kMemory])), 100.0 * mine[kMemory] / unsplit,
      format_count(static_cast<std::int64_t>(unsplit))));
  return lines;
}

}  // namespace ringdp_train
