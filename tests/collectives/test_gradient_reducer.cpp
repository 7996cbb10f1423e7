// GradientReducer: averages against an exact double reference, bit-identical ranks, the
// fusion plan, overlap shown by a handshake, errors carried to wait_all().

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"

namespace {

using ringdp::Algorithm;
using ringdp::GradientReducer;
using ringdp::test::all_ranks;
using ringdp::test::hash_bytes;
using ringdp::test::same_on_all_ranks;

// Rank r's value at element i of step s: every rank can compute every other rank's input,
// so the exact average is known locally (in double) without any communication.
float input(int rank, int step, std::size_t i) {
  std::uint64_t x =
      (static_cast<std::uint64_t>(rank) * 1000003u + static_cast<std::uint64_t>(step)) *
          0x9E3779B97F4A7C15ull +
      i * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 29;
  return static_cast<float>(static_cast<double>(x >> 40) / static_cast<double>(1u << 24) * 8.0 -
                            4.0);
}

void fill(std::span<float> data, int rank, int step, std::size_t first_index) {
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = input(rank, step, first_index + i);
}

// True when `data` holds the average over all ranks of input(r, step, first_index + i), to
// within float rounding of a sum of `ranks` terms.
bool is_average(std::span<const float> data, int ranks, int step, std::size_t first_index) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    double sum = 0.0;
    double magnitude = 0.0;
    for (int r = 0; r < ranks; ++r) {
      const double v = input(r, step, first_index + i);
      sum += v;
      magnitude += std::abs(v);
    }
    const double expected = sum / ranks;
    const double bound = 4.0 * ranks * 1.2e-7 * (magnitude / ranks) + 1e-30;
    if (std::abs(static_cast<double>(data[i]) - expected) > bound) return false;
  }
  return true;
}

struct World {
  ringdp::Communicator comm{MPI_COMM_WORLD};
  int rank = comm.rank();
  int size = comm.size();
};

}  // namespace

TEST_CASE("GradientReducer averages every bucket, bit-identical on every rank, for every algorithm",
          "[reducer]") {
  World w;
  // Awkward sizes: empty, one element, fewer than ranks, primes, a multi-segment bucket.
  const std::vector<std::size_t> sizes = {0, 1, 3, 1009, 0, 70001, 5, 40000};
  const std::size_t total = std::accumulate(sizes.begin(), sizes.end(), std::size_t{0});
  for (const Algorithm algorithm : {Algorithm::Auto, Algorithm::Ring, Algorithm::RecursiveDoubling,
                                    Algorithm::Mpi, Algorithm::ParameterServer}) {
    for (const std::size_t fusion : {std::size_t{0}, std::size_t{64} << 10}) {
      CAPTURE(ringdp::to_string(algorithm), fusion);
      std::vector<float> arena(total);
      std::vector<std::span<float>> buckets;
      std::size_t at = 0;
      for (const std::size_t n : sizes) {
        buckets.push_back(std::span<float>(arena).subspan(at, n));
        at += n;
      }
      GradientReducer reducer(w.comm, buckets, {.algorithm = algorithm, .fusion_bytes = fusion});
      for (int step = 0; step < 3; ++step) {
        fill(arena, w.rank, step, 0);
        // Out of order on odd steps: the plan, not the submission order, decides.
        for (std::size_t k = 0; k < sizes.size(); ++k) {
          reducer.submit(step % 2 == 0 ? k : sizes.size() - 1 - k);
        }
        reducer.wait_all();
        CHECK(all_ranks(is_average(arena, w.size, step, 0)));
        CHECK(same_on_all_ranks(hash_bytes(arena.data(), arena.size() * sizeof(float))));
      }
      for (const auto& t : reducer.timings()) {
        CHECK(all_ranks(t.algorithm != Algorithm::Auto && t.submitted <= t.started &&
                        t.started <= t.finished));
      }
    }
  }
}

TEST_CASE("GradientReducer::split cuts at the bucket size and at the boundaries", "[reducer]") {
  std::vector<float> arena(1000);
  const std::vector<std::size_t> boundaries = {10, 250, 1000};
  const auto buckets = GradientReducer::split(arena, 100 * sizeof(float), boundaries);
  // Expected by hand: [0,10) [10,110) [110,210) [210,250) [250,350) ... [950,1000).
  std::vector<std::size_t> offsets;
  std::vector<std::size_t> lengths;
  for (const auto& b : buckets) {
    offsets.push_back(static_cast<std::size_t>(b.data() - arena.data()));
    lengths.push_back(b.size());
  }
  CHECK(offsets ==
        std::vector<std::size_t>{0, 10, 110, 210, 250, 350, 450, 550, 650, 750, 850, 950});
  CHECK(lengths ==
        std::vector<std::size_t>{10, 100, 100, 40, 100, 100, 100, 100, 100, 100, 100, 50});
  CHECK(GradientReducer::split(std::span<float>(), 100).empty());
}

TEST_CASE("GradientReducer fuses small buckets, in place when adjacent, through a buffer when not",
          "[reducer][fusion]") {
  World w;
  SECTION("adjacent buckets: one in-place reduction per unit") {
    std::vector<float> arena(100 * 10 + 50000);
    auto buckets = GradientReducer::split(std::span<float>(arena).first(1000), 100 * sizeof(float));
    buckets.push_back(std::span<float>(arena).subspan(1000));  // 200 kB: its own unit
    // 10 buckets of 400 B, fusion limit 1600 B: units of 4, 4, 2 buckets, then the large one.
    GradientReducer reducer(w.comm, buckets, {.fusion_bytes = 1600});
    REQUIRE(reducer.units().size() == 4);
    CHECK(reducer.units()[0].count == 4);
    CHECK(reducer.units()[1].count == 4);
    CHECK(reducer.units()[2].count == 2);
    CHECK(reducer.units()[3].count == 1);
    for (const auto& u : reducer.units()) CHECK(u.contiguous);
    fill(arena, w.rank, 7, 0);
    reducer.submit_prefix(arena.size());
    reducer.wait_all();
    CHECK(all_ranks(is_average(arena, w.size, 7, 0)));
    CHECK(same_on_all_ranks(hash_bytes(arena.data(), arena.size() * sizeof(float))));
    // Buckets of one unit were reduced together: the same start and end times.
    const auto& t = reducer.timings();
    CHECK(all_ranks(t[0].unit == 0 && t[3].unit == 0 && t[4].unit == 1 &&
                    t[0].started == t[3].started && t[10].unit == 3 &&
                    t[10].unit_bytes == 50000 * sizeof(float)));
  }
  SECTION("separate buffers (an HPC code's fields): packed into the fusion buffer") {
    std::vector<std::vector<float>> fields = {std::vector<float>(7), std::vector<float>(1),
                                              std::vector<float>(300), std::vector<float>(13)};
    std::vector<std::span<float>> buckets;
    for (auto& f : fields) buckets.push_back(f);
    GradientReducer reducer(w.comm, buckets, {.fusion_bytes = 1 << 20});
    REQUIRE(reducer.units().size() == 1);
    CHECK_FALSE(reducer.units()[0].contiguous);
    for (int step = 0; step < 2; ++step) {
      std::size_t first = 0;
      for (auto& f : fields) {
        fill(f, w.rank, step, first);
        first += f.size();
      }
      for (std::size_t k = 0; k < fields.size(); ++k) reducer.submit(k);
      reducer.wait_all();
      first = 0;
      bool ok = true;
      for (auto& f : fields) {
        ok = ok && is_average(f, w.size, step, first);
        first += f.size();
      }
      CHECK(all_ranks(ok));
    }
  }
}

TEST_CASE("GradientReducer reduces a bucket while later buckets are not yet submitted",
          "[reducer][overlap]") {
  World w;
  std::vector<float> first(50000);
  std::vector<float> second(50000);
  GradientReducer reducer(w.comm, {std::span<float>(first), std::span<float>(second)},
                          {.fusion_bytes = 0});
  fill(first, w.rank, 1, 0);
  reducer.submit(0);
  // Handshake, no sleep: wait(0) returns only once the progress thread has averaged the
  // first bucket; the second has not been written, let alone submitted, at that point.
  reducer.wait(0);
  const bool first_done_early = is_average(first, w.size, 1, 0);
  fill(second, w.rank, 1, first.size());
  reducer.submit(1);
  reducer.wait_all();
  CHECK(all_ranks(first_done_early));
  CHECK(all_ranks(is_average(second, w.size, 1, first.size())));
  const auto& t = reducer.timings();
  CHECK(all_ranks(t[0].started < t[1].submitted && t[0].finished <= t[1].submitted));
}

TEST_CASE("GradientReducer carries errors of the progress thread to wait_all()",
          "[reducer][errors]") {
  World w;
  std::vector<float> arena(3000);
  const auto buckets = GradientReducer::split(arena, 1000 * sizeof(float));

  SECTION("an exception from after_reduce, then a normal step") {
    int calls = 0;
    bool fail = true;
    GradientReducer reducer(
        w.comm, buckets, {.fusion_bytes = 0, .after_reduce = [&](std::span<const float> reduced) {
                            ++calls;
                            if (fail && calls == 2) {
                              throw std::runtime_error("check failed on " +
                                                       std::to_string(reduced.size()) + " values");
                            }
                          }});
    fill(arena, w.rank, 3, 0);
    reducer.submit_prefix(arena.size());
    std::string message;
    try {
      reducer.wait_all();
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(all_ranks(message == "check failed on 1000 values"));
    // The other units were still reduced, so ranks stayed in step.
    CHECK(all_ranks(calls == 3 && is_average(arena, w.size, 3, 0)));
    fail = false;
    fill(arena, w.rank, 4, 0);
    reducer.submit_prefix(arena.size());
    reducer.wait_all();
    CHECK(all_ranks(is_average(arena, w.size, 4, 0)));
  }
  SECTION("an unknown algorithm value") {
    GradientReducer reducer(w.comm, buckets, {.algorithm = static_cast<Algorithm>(42)});
    reducer.submit_prefix(arena.size());
    bool threw = false;
    try {
      reducer.wait_all();
    } catch (const ringdp::InvalidArgument& e) {
      threw = std::string(e.what()).find("unknown Algorithm") != std::string::npos;
    }
    CHECK(all_ranks(threw));
  }
  SECTION("a bucket never submitted, a bucket submitted twice") {
    GradientReducer reducer(w.comm, buckets, {.fusion_bytes = 0});
    fill(arena, w.rank, 5, 0);
    reducer.submit(0);
    bool twice = false;
    try {
      reducer.submit(0);
    } catch (const ringdp::InvalidArgument&) {
      twice = true;
    }
    reducer.submit(2);
    bool missing = false;
    try {
      reducer.wait_all();
    } catch (const ringdp::InvalidArgument& e) {
      missing = std::string(e.what()).find("bucket 1 was not submitted") != std::string::npos;
    }
    CHECK(all_ranks(twice && missing));
    // Bucket 0 ran (its unit precedes the gap); bucket 2 did not (it waits for unit 1).
    CHECK(all_ranks(is_average(std::span<const float>(arena).first(1000), w.size, 5, 0)));
  }
}

TEST_CASE("GradientReducer refuses different bucket layouts on different ranks",
          "[reducer][errors]") {
  World w;
  if (w.size < 2) return;
  std::vector<float> arena(100 + (w.rank == w.size - 1 ? 1 : 0));
  std::string message;
  int named = -2;
  bool invalid = false;
  try {
    GradientReducer reducer(w.comm, {std::span<float>(arena)});
  } catch (const ringdp::Error& e) {
    message = e.cause();
    named = e.rank();
    invalid = e.kind() == ringdp::ErrorKind::InvalidArgument && e.collective();
  }
  const std::string last = std::to_string(w.size - 1);
  CHECK(all_ranks(invalid && named == w.size - 1 &&
                  message.find("registered 1 buckets of 101 floats") != std::string::npos &&
                  message.find("ranks differing from rank 0: " + last + ")") != std::string::npos));
}

TEST_CASE("GradientReducer refuses buckets that overlap on one rank, on every rank",
          "[reducer][errors]") {
  World w;
  // The last rank registers two buckets that share 3 floats; the others, two disjoint ones
  // of the same sizes (so that only the overlap is wrong).
  std::vector<float> arena(200);
  const bool overlaps = w.rank == w.size - 1;
  const std::span<float> all(arena);
  std::vector<std::span<float>> buckets = {all.subspan(0, 50), all.subspan(overlaps ? 47 : 50, 50)};
  bool refused = false;
  try {
    GradientReducer reducer(w.comm, buckets);
  } catch (const ringdp::InvalidArgument& e) {
    refused = e.collective() && e.rank() == w.size - 1 &&
              e.cause().find("buckets overlap in memory") != std::string::npos;
  }
  CHECK(all_ranks(refused));
}
