// A rank killed in a pipeline stage ends the job: the stages train without end, and after
// three steps the middle stage's rank is killed (SIGKILL: no finalize, no message). Its
// neighbours then wait for activations or gradients that never come. Registered WILL_FAIL
// with a timeout: it passes only when the job ends with a failure in time, and a hang
// (the survivors waiting forever) fails it.

#include <csignal>
#include <cstdio>
#include <vector>

#include "ringdp/ringdp.hpp"

int main(int argc, char** argv) {
  using namespace ringdp;
  Environment env(argc, argv, ThreadLevel::Serialized);
  const Communicator world(MPI_COMM_WORLD);
  const int stages = world.size();
  const parallel::Grid grid(world, 1, stages);
  const int stage = grid.coordinates().pipeline;
  const parallel::MlpLayout layout(
      std::vector<std::size_t>(static_cast<std::size_t>(stages) + 1, 16), 1, stages);
  auto model = layout.build<float>(grid.tensor(), stage);
  layout.initialize(model, stage, 1);
  parallel::PipelineStage<float> pipeline(grid.pipeline(), model, 4);
  const nn::Matrix<float> x = nn::Matrix<float>::Random(16, 32);
  const nn::Matrix<float> r = nn::Matrix<float>::Random(16, 32);
  auto loss = [&r](const nn::Matrix<float>& out, parallel::Slice c, nn::Matrix<float>& grad) {
    grad = r.middleCols(static_cast<Eigen::Index>(c.offset), static_cast<Eigen::Index>(c.size));
    nn::LossResult result;
    result.loss_sum = static_cast<double>(out.cwiseProduct(grad).sum());
    result.count = c.size;
    return result;
  };
  for (int step = 0;; ++step) {
    if (step == 3 && stage == stages / 2) {
      std::fprintf(stderr, "stage %d: killed after %d steps\n", stage, step);
      std::raise(SIGKILL);
    }
    pipeline.step(x, 32, loss);
  }
}
