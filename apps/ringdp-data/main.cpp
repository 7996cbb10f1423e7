// ringdp-data: make and check datasets.
//   ringdp-data synth --samples N --features D --classes C --seed S --out FILE
//       (run under mpirun to write in parallel; the datasets do not depend on the ranks)
//   ringdp-data inspect FILE
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <span>

#include "inspect.hpp"
#include "ringdp/ringdp.hpp"

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv);
  ringdp::Communicator comm(MPI_COMM_WORLD);

  CLI::App app{"ringdp-data: synthesise and inspect HDF5 classification datasets"};
  app.require_subcommand(1);

  ringdp::data::SynthOptions synth;
  std::string out;
  std::string type = "float32";
  auto* s =
      app.add_subcommand("synth", "write a learnable synthetic dataset (parallel under mpirun)");
  s->add_option("--samples", synth.samples, "training samples N")->required();
  s->add_option("--test-samples", synth.test_samples, "test samples (0: none)");
  s->add_option("--features", synth.features, "values per sample D")->required();
  s->add_option("--classes", synth.classes, "number of classes C")->required();
  s->add_option("--seed", synth.seed, "seed of the data and the teacher network");
  s->add_option("--hidden", synth.hidden, "hidden width of the teacher network");
  s->add_option("--type", type, "stored type")->check(CLI::IsMember({"float32", "uint8"}));
  s->add_option("--chunk-rows", synth.chunk_rows, "rows per HDF5 chunk");
  s->add_option("--gzip", synth.gzip, "deflate level (0: uncompressed)");
  s->add_option("--block-mib", synth.block_bytes, "MiB generated per write per rank")
      ->transform([](std::string v) { return std::to_string(std::stoull(v) << 20); });
  s->add_option("--out", out, "output file")->required();

  std::string file;
  int classes = 0;
  auto* i = app.add_subcommand("inspect", "list datasets, shapes, types, chunking; check labels");
  i->add_option("file", file, "HDF5 file")->required();
  i->add_option("--classes", classes, "number of classes to check labels against");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return comm.rank() == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 2);
  }

  try {
    if (s->parsed()) {
      synth.type =
          type == "uint8" ? ringdp::data::ElementType::UInt8 : ringdp::data::ElementType::Float32;
      ringdp::data::synthesize(comm, out, synth);
      if (comm.rank() == 0) {
        std::cout << fmt::format(
            "wrote {}: {} + {} samples x {} {} features, {} classes, seed {}, {} ranks\n", out,
            synth.samples, synth.test_samples, synth.features, type, synth.classes, synth.seed,
            comm.size());
      }
      return 0;
    }
    // inspect is serial: rank 0 reads and prints; the others wait for its verdict (a
    // failure is rank 0's error, of its class, on every rank).
    std::int32_t problems = 0;
    ringdp::agree_on(comm, [&] {
      if (comm.rank() == 0) problems = inspect_file(file, classes, std::cout);
    });
    ringdp::broadcast<std::int32_t>(comm, std::span(&problems, 1), 0);
    return problems == 0 ? 0 : 1;
  } catch (const ringdp::Error& e) {
    if (comm.rank() == 0 || !e.collective()) std::cerr << e.what() << "\n";
    return 1;
  }
}
