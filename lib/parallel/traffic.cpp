#include "ringdp/parallel/traffic.hpp"

#include <limits>

#include "ringdp/collectives/tuning.hpp"

namespace ringdp::parallel {

RankBytes allreduce_bytes_sent(Algorithm algorithm, std::size_t bytes, int ranks) {
  if (ranks <= 1 || bytes == 0) return {};
  const double n = ranks;
  const auto size = static_cast<double>(bytes);
  switch (algorithm) {
    case Algorithm::Ring:
      return {2.0 * (n - 1.0) / n * size, 2.0 * (n - 1.0) / n * size};
    case Algorithm::RecursiveDoubling: {
      int p = 1;
      int rounds = 0;
      while (p * 2 <= ranks) {
        p *= 2;
        ++rounds;
      }
      const int extra = ranks - p;
      // The odd ranks of the folded pairs send in the doubling and once more at the end.
      const double busiest = (rounds + (extra > 0 ? 1 : 0)) * size;
      return {(p * rounds + 2.0 * extra) / n * size, busiest};
    }
    case Algorithm::ParameterServer:
      return {2.0 * (n - 1.0) / n * size, (n - 1.0) * size};
    case Algorithm::Shm:
      // Through the node's shared window: no message at all.
      return {0.0, 0.0};
    case Algorithm::Hierarchical:  // depends on the node layout, which this model does not know
    case Algorithm::Mpi:
    case Algorithm::Auto:
      break;
  }
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  return {unknown, unknown};
}

StepTraffic step_traffic(const MlpLayout& layout, int stage, std::size_t batch,
                         std::size_t element_bytes, Algorithm algorithm,
                         const NodeLayout* tensor_nodes) {
  StepTraffic traffic;
  const int t = layout.tensor();
  auto allreduce = [&](std::size_t elements) {
    const std::size_t bytes = elements * batch * element_bytes;
    const Algorithm resolved = tensor_nodes != nullptr
                                   ? resolve_algorithm(algorithm, bytes, t, *tensor_nodes)
                                   : resolve_algorithm(algorithm, bytes, t);
    traffic.tensor += allreduce_bytes_sent(resolved, bytes, t).mean;
    ++traffic.tensor_allreduces;
  };
  for (std::size_t k = layout.first_dense(stage); k < layout.end_dense(stage); ++k) {
    const DensePlacement& d = layout.dense_layers()[k];
    if (d.split == DenseSplit::Row) allreduce(d.outputs);
    if (d.split == DenseSplit::Column && k > 0) allreduce(d.inputs);
  }
  const auto bytes = [&](std::size_t width) {
    return static_cast<double>(width * batch * element_bytes);
  };
  if (stage + 1 < layout.pipeline()) traffic.pipeline += bytes(layout.stage_outputs(stage));
  if (stage > 0) traffic.pipeline += bytes(layout.stage_inputs(stage));
  return traffic;
}

}  // namespace ringdp::parallel
