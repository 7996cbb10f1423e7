// synthesize(): the datasets written by p ranks equal, byte for byte, those written by
// one rank with the same seed; the result is a valid, non-trivial classification set.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "data_fixture.hpp"
#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/data/h5_dataset.hpp"
#include "ringdp/data/synth.hpp"

using ringdp::data::ElementType;
using ringdp::data::SynthOptions;
using ringdp::test::all_ranks;
using ringdp::test::TempDir;

TEST_CASE("synth: p ranks write the same datasets as 1 rank") {
  TempDir dir("synth");
  ringdp::Communicator world(MPI_COMM_WORLD);
  for (ElementType type : {ElementType::Float32, ElementType::UInt8}) {
    SynthOptions o;
    o.samples = 2003;  // chunks not divisible among ranks, a short last chunk
    o.test_samples = 301;
    o.features = 12;
    o.classes = 3;
    o.seed = 77;
    o.type = type;
    o.chunk_rows = 64;
    o.block_bytes = 2 * 64 * 12;  // two chunks per write: several collective rounds
    const std::string parallel = dir.file(std::string("parallel-") + to_string(type) + ".h5");
    const std::string serial = dir.file(std::string("serial-") + to_string(type) + ".h5");
    ringdp::data::synthesize(world, parallel, o);
    bool ok = true;
    if (world.rank() == 0) {
      ringdp::Communicator self(MPI_COMM_SELF);
      o.block_bytes = std::size_t{1} << 20;  // and one write of everything
      ringdp::data::synthesize(self, serial, o);
      for (const char* name : {"/train/images", "/train/labels", "/test/images", "/test/labels"}) {
        const auto a = ringdp::test::read_dataset_bytes(parallel, name);
        const auto b = ringdp::test::read_dataset_bytes(serial, name);
        if (a != b || a.empty()) {
          UNSCOPED_INFO(name << " differs (" << a.size() << " vs " << b.size() << " bytes)");
          ok = false;
        }
      }
      ok = ok && !std::filesystem::exists(parallel + ".partial");
    }
    CHECK(all_ranks(ok));

    // Opens as a dataset; every class occurs (the teacher is not degenerate).
    ringdp::data::H5Dataset data(world, parallel);
    const auto labels = ringdp::test::read_dataset_bytes(parallel, "/train/labels");
    std::vector<std::size_t> counts(3, 0);
    for (std::size_t i = 0; i < labels.size(); i += 4) {
      std::int32_t v = 0;
      std::memcpy(&v, labels.data() + i, 4);
      if (v >= 0 && v < 3) ++counts[static_cast<std::size_t>(v)];
    }
    CHECK(all_ranks(data.size() == 2003 && data.classes() == 3 && data.element_type() == type &&
                    data.chunk_rows() == 64 && counts[0] > 100 && counts[1] > 100 &&
                    counts[2] > 100 && counts[0] + counts[1] + counts[2] == 2003));
  }
}

TEST_CASE("synth: an unwritable destination fails on every rank") {
  TempDir dir("synth-bad");
  ringdp::Communicator world(MPI_COMM_WORLD);
  SynthOptions o;
  o.samples = 100;
  const std::string path = dir.file("no-such-dir/out.h5");
  bool threw = false;
  std::string message;
  try {
    ringdp::data::synthesize(world, path, o);
  } catch (const ringdp::Error& e) {
    threw = e.collective();
    message = e.what();
  }
  CHECK(all_ranks(threw && message.find("out.h5") != std::string::npos));
}
