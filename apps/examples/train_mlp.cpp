// The trainer from C++: an MLP trained data-parallel on an HDF5 dataset, in about 20 lines.
// Run: mpirun -np 2 build/apps/examples/ringdp-train-mlp data/mnist10k.h5
#include <cstdio>
#include <ringdp/ringdp.hpp>

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Serialized);
  ringdp::Communicator comm(MPI_COMM_WORLD);
  namespace data = ringdp::data;
  const char* file = argc > 1 ? argv[1] : "data/mnist10k.h5";

  data::ShardedLoader train(comm, data::H5Dataset(comm, file), {.batch_size = 32, .seed = 1});
  data::ShardedLoader test(comm, data::H5Dataset(comm, file, {.names = data::DatasetNames::test()}),
                           {.batch_size = 256, .shuffle = false, .evaluation = true});
  auto model = ringdp::nn::Sequential<float>::from_spec("784-128-10");
  model.initialize(/*seed=*/1);
  ringdp::nn::Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9});
  ringdp::train::Trainer trainer(comm, model, sgd, {.schedule = {.base_lr = 0.05}});

  ringdp::train::LoaderSource train_batches(train), test_batches(test);
  for (int epoch = 0; epoch < 3; ++epoch) {
    trainer.train_epoch(train_batches);
    const auto result = trainer.evaluate(test_batches);
    if (comm.rank() == 0)
      std::printf("epoch %d: test accuracy %.2f%%\n", epoch + 1, 100 * result.accuracy);
  }
}
