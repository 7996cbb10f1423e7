// RINGDP_TUNING: the parser and its error messages, Auto following a hand-written file
// (tuning/good.txt, set through the test's environment) for the rank counts it covers and
// falling back for the others, the tuned ring segment, correct results, and the
// GradientReducer's progress thread running the tuned choice.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "reference.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/tuning_table.hpp"
#include "ringdp/error.hpp"

using ringdp::Algorithm;
using ringdp::ReduceOp;
using ringdp::TuningTable;
using ringdp::test::all_ranks;

namespace {

// What tuning/good.txt says, written out by hand from the file (not from the parser).
// nullopt: the file has no rule for that rank count.
std::optional<Algorithm> expected_from_good_file(std::size_t bytes, int ranks) {
  if (ranks == 2) {
    if (bytes < 4096) return Algorithm::Mpi;
    if (bytes < 65536) return Algorithm::ParameterServer;
    return Algorithm::RecursiveDoubling;
  }
  if (ranks == 3) return bytes < 32768 ? Algorithm::Ring : Algorithm::Mpi;
  return std::nullopt;
}

const std::size_t kSizes[] = {0,     1,     1023,  1024,  1025,   4095,    4096,
                              32767, 32768, 65535, 65536, 131072, 1 << 20, std::size_t{1} << 30};

// The cause of the InvalidArgument parse() throws for `text`, or "" if it does not throw.
std::string parse_error(const std::string& text) {
  try {
    (void)TuningTable::parse(text, "t.txt");
  } catch (const ringdp::InvalidArgument& e) {
    return e.cause();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a tuning file parses, and a size takes the rule at or below it", "[tuning]") {
  const TuningTable t = TuningTable::parse(
      "# comment\n\n  ranks 4 bytes 65536 ring  # trailing comment\r\n"
      "ranks 4 bytes 0 rd\nranks 4 bytes 1048576 mpi\nranks 8 bytes 512 ps\n"
      "ranks 4 segment 32768\n",
      "t.txt");
  CHECK(t.algorithm(0, 4) == Algorithm::RecursiveDoubling);
  CHECK(t.algorithm(65535, 4) == Algorithm::RecursiveDoubling);
  CHECK(t.algorithm(65536, 4) == Algorithm::Ring);
  CHECK(t.algorithm(1048575, 4) == Algorithm::Ring);
  CHECK(t.algorithm(std::size_t{1} << 40, 4) == Algorithm::Mpi);
  // Below the first rule of a rank count: the first rule (the nearest measured size above).
  CHECK(t.algorithm(1, 8) == Algorithm::ParameterServer);
  CHECK(t.algorithm(1 << 20, 8) == Algorithm::ParameterServer);
  CHECK_FALSE(t.algorithm(1 << 20, 5).has_value());
  CHECK(t.segment_bytes(4) == std::size_t{32768});
  CHECK_FALSE(t.segment_bytes(8).has_value());
  CHECK(t.source() == "t.txt");

  // The hash tells texts apart, and an empty file is a valid file without rules.
  CHECK(TuningTable::parse("ranks 2 bytes 0 rd\n", "a").hash() ==
        TuningTable::parse("ranks 2 bytes 0 rd\n", "b").hash());
  CHECK(TuningTable::parse("ranks 2 bytes 0 rd\n", "a").hash() !=
        TuningTable::parse("ranks 2 bytes 0 mpi\n", "a").hash());
  CHECK_FALSE(TuningTable::parse("", "empty").algorithm(1, 2).has_value());
}

TEST_CASE("a malformed tuning file names the file and the line", "[tuning]") {
  struct Case {
    std::string text;
    std::string want;  // the start of the cause, and a phrase of it
    std::string phrase;
  };
  const std::vector<Case> cases = {
      {"ranks 2 bytes 0 rd\nrank 2 bytes 0 rd\n", "t.txt:2:", "not a rule"},
      {"ranks 2 bytes 0\n", "t.txt:1:", "exactly 5 words"},
      {"ranks 2 bytes 0 rd extra\n", "t.txt:1:", "exactly 5 words"},
      {"\n\nranks two bytes 0 rd\n", "t.txt:3:", "rank count 'two'"},
      {"ranks 0 bytes 0 rd\n", "t.txt:1:", "rank count '0'"},
      {"ranks 2 bytes -1 rd\n", "t.txt:1:", "not a byte count"},
      {"ranks 2 bytes 4K rd\n", "t.txt:1:", "not a byte count"},
      {"ranks 2 bytes 99999999999999999999999 rd\n", "t.txt:1:", "not a byte count"},
      {"ranks 2 bytes 0 fast\n", "t.txt:1:", "unknown allreduce algorithm 'fast'"},
      {"ranks 2 bytes 0 auto\n", "t.txt:1:", "'auto'"},
      {"ranks 2 bytes 0 rd\nranks 2 bytes 0 ring\n", "t.txt:2:", "first is on line 1"},
      {"ranks 2 segment 0\n", "t.txt:1:", "segment of 0 bytes"},
      {"ranks 2 segment 4096\nranks 2 segment 8192\n", "t.txt:2:", "second segment rule"},
      {"ranks 2 segment 4096 ring\n", "t.txt:1:", "exactly 4 words"},
      {"ranks 2 bits 0 rd\n", "t.txt:1:", "unknown rule kind 'bits'"},
      {"ranks 2 bytes 0 rd\n\x01\x02\xff garbage\n", "t.txt:2:", "'??? garbage'"},
  };
  for (const Case& c : cases) {
    const std::string cause = parse_error(c.text);
    INFO("text: " << c.text << "cause: " << cause);
    CHECK(cause.rfind(c.want, 0) == 0);
    CHECK(contains(cause, c.phrase));
  }
  bool io_error = false;
  try {
    (void)TuningTable::load("/nonexistent/ringdp-tuning.txt");
  } catch (const ringdp::IoError& e) {
    io_error = contains(e.cause(), "/nonexistent/ringdp-tuning.txt");
  }
  CHECK(io_error);
}

TEST_CASE("Auto follows RINGDP_TUNING for the rank counts it covers", "[tuning]") {
  // Registered with RINGDP_TUNING=tuning/good.txt.
  const ringdp::TuningTable* table = ringdp::tuning_from_environment();
  const bool loaded = all_ranks(table != nullptr);
  REQUIRE(loaded);  // decided collectively: every rank leaves together
  CHECK(contains(table->source(), "good.txt"));
  for (int ranks = 1; ranks <= 5; ++ranks) {
    for (const std::size_t bytes : kSizes) {
      const auto want = expected_from_good_file(bytes, ranks);
      INFO("ranks " << ranks << " bytes " << bytes);
      // Rank counts without rules fall back to the built-in choice.
      CHECK(ringdp::resolve_algorithm(Algorithm::Auto, bytes, ranks) ==
            want.value_or(ringdp::select_algorithm(bytes, ranks)));
      // An explicit algorithm is never replaced.
      CHECK(ringdp::resolve_algorithm(Algorithm::Mpi, bytes, ranks) == Algorithm::Mpi);
    }
  }
  // The tuned segment for 3 ranks; other rank counts keep the default; an explicit
  // setting wins over the file, and 0 removes it again.
  const std::size_t saved = ringdp::ring_segment_bytes();
  ringdp::set_ring_segment_bytes(0);
  CHECK(ringdp::ring_segment_bytes(3) == 4096);
  CHECK(ringdp::ring_segment_bytes(2) == ringdp::ring_segment_bytes(5));
  CHECK(ringdp::ring_segment_bytes(2) != 4096);
  ringdp::set_ring_segment_bytes(512);
  CHECK(ringdp::ring_segment_bytes(3) == 512);
  ringdp::set_ring_segment_bytes(saved);
}

TEST_CASE("allreduce under RINGDP_TUNING gives MPI's results on every rank", "[tuning]") {
  // Counts on both sides of every rule of good.txt (float: 4 bytes), and a multi-segment
  // ring at 3 ranks (4 KiB segments).
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::uint64_t seed = 100;
  bool ok = true;
  for (const std::size_t count :
       {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{1023},
        std::size_t{1024}, std::size_t{8191}, std::size_t{8192}, std::size_t{16384},
        std::size_t{70001}}) {
    for (const ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
      const auto input = ringdp::test::random_input<float>(count, op, ++seed);
      const auto want = ringdp::test::mpi_reference(input, op);
      auto got = input;
      ringdp::allreduce(comm, std::span<float>(got), op, Algorithm::Auto);
      const std::size_t wrong = ringdp::test::count_wrong<float>(got, want, input, op);
      const bool same = ringdp::test::same_on_all_ranks(
          ringdp::test::hash_bytes(got.data(), got.size() * sizeof(float)));
      INFO("count " << count << " op " << ringdp::to_string(op) << ": " << wrong << " wrong");
      CHECK(all_ranks(wrong == 0));
      CHECK(same);
      ok = ok && wrong == 0 && same;
    }
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("the GradientReducer's progress thread runs the tuned algorithm", "[tuning]") {
  ringdp::Communicator comm(MPI_COMM_WORLD);
  const int n = comm.size();
  // Buckets of 100 floats (400 B), 2000 floats (8000 B) and 20000 floats (80000 B), not
  // fused, so that each is its own reduction.
  std::vector<float> arena(100 + 2000 + 20000);
  std::vector<std::span<float>> buckets = {std::span<float>(arena).subspan(0, 100),
                                           std::span<float>(arena).subspan(100, 2000),
                                           std::span<float>(arena).subspan(2100, 20000)};
  ringdp::ReducerOptions options;
  options.fusion_bytes = 0;
  options.op = ReduceOp::Sum;
  ringdp::GradientReducer reducer(comm, buckets, options);
  for (std::size_t i = 0; i < arena.size(); ++i) arena[i] = static_cast<float>(i % 7);
  for (std::size_t b = 0; b < buckets.size(); ++b) reducer.submit(b);
  reducer.wait_all();
  bool right = true;
  for (std::size_t i = 0; i < arena.size(); ++i) {
    right = right && arena[i] == static_cast<float>(static_cast<int>(i % 7) * n);
  }
  CHECK(all_ranks(right));
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    const std::size_t bytes = buckets[b].size_bytes();
    const Algorithm want =
        expected_from_good_file(bytes, n).value_or(ringdp::select_algorithm(bytes, n));
    INFO("bucket " << b << " of " << bytes << " bytes at " << n << " ranks");
    CHECK(reducer.timings()[b].algorithm == want);
  }
}
