// Soak test of the allreduce algorithms: --calls allreduce calls, each with a random element
// type, operation, algorithm and count (the same draw on every rank, from --seed), in check
// mode. Each result is compared element by element with PMPI_Allreduce on the same input
// and checked bit-identical across ranks. The resident set size (VmRSS) is read after a
// warm-up and at the end: a leak per call would show as growth.
//
// Inputs are small integers (or multiples of 1/8 for floating point) so that every sum,
// average and product is exact in any order: a mismatch is a real error, not rounding.
#include <fmt/format.h>
#include <malloc.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <ringdp/comm/mpi_check.hpp>
#include <ringdp/comm/mpi_types.hpp>
#include <ringdp/ringdp.hpp>
#include <string>
#include <vector>

namespace {

// Resident set size after handing freed heap memory back to the system (malloc_trim), so
// that the figure follows live memory rather than the allocator's high-water mark.
long rss_kib() {
  malloc_trim(0);
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Element i of rank r in call c. Products use values in {-1, 1, 2} so that 2^ranks stays
// exact; the rest use small integers (eighths for floating point).
template <class T>
T input(int call, int rank, std::size_t i, ringdp::ReduceOp op) {
  const auto h = static_cast<std::uint64_t>(i) * 2654435761u +
                 static_cast<std::uint64_t>(rank) * 40503u + static_cast<std::uint64_t>(call) * 97u;
  if (op == ringdp::ReduceOp::Product) {
    const int v[] = {-1, 1, 2};
    return static_cast<T>(v[h % 3]);
  }
  const long long k = static_cast<long long>(h % 2001) - 1000;
  if constexpr (std::is_floating_point_v<T>) return static_cast<T>(k) / T(8);
  return static_cast<T>(k);
}

struct Tally {
  long calls = 0;
  long mismatched_calls = 0;
  long mismatched_elements = 0;
  long not_identical = 0;  // calls whose result differs between ranks
  std::array<long, 5> per_algorithm{};
};

// One call; returns the number of elements that differ from MPI's result on this rank.
template <class T>
long one_call(const ringdp::Communicator& comm, int call, std::size_t count, ringdp::ReduceOp op,
              ringdp::Algorithm algorithm, bool& identical) {
  const int rank = comm.rank();
  std::vector<T> data(count);
  for (std::size_t i = 0; i < count; ++i) data[i] = input<T>(call, rank, i, op);
  std::vector<T> reference(count);
  RINGDP_MPI_CHECK(PMPI_Allreduce(data.data(), reference.data(),
                                  ringdp::checked_mpi_count(count), ringdp::mpi_datatype<T>(),
                                  ringdp::mpi_op(op), comm.native()));
  if (op == ringdp::ReduceOp::Average) {
    for (T& v : reference) v /= static_cast<T>(comm.size());
  }
  ringdp::allreduce(comm, std::span<T>(data), op, algorithm);
  long wrong = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (std::memcmp(&data[i], &reference[i], sizeof(T)) != 0) ++wrong;
  }
  // Bit-identical on every rank: compare a checksum of the bytes.
  std::uint64_t h = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  for (std::size_t i = 0; i < count * sizeof(T); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  std::uint64_t lo = h;
  std::uint64_t hi = h;
  RINGDP_MPI_CHECK(PMPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, comm.native()));
  RINGDP_MPI_CHECK(PMPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, comm.native()));
  identical = lo == hi;
  return wrong;
}

}  // namespace

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Serialized);
  ringdp::Communicator comm(MPI_COMM_WORLD);
  int calls = 1000;
  std::uint64_t seed = 1;
  std::size_t max_count = std::size_t{1} << 20;
  int warmup = 20;
  CLI::App app("ringdp-soak: random allreduce calls in check mode, compared with MPI");
  app.add_option("--calls", calls, "Allreduce calls")->capture_default_str();
  app.add_option("--seed", seed, "Seed of the random draws (same on every rank)")
      ->capture_default_str();
  app.add_option("--max-count", max_count, "Largest element count of one call")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Calls before the first RSS reading")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return comm.rank() == 0 ? app.exit(e) : 1;
  }
  comm.set_check_mode(true);
  const int rank = comm.rank();

  std::mt19937_64 rng(seed);
  const ringdp::Algorithm algorithms[] = {
      ringdp::Algorithm::Auto, ringdp::Algorithm::Ring, ringdp::Algorithm::RecursiveDoubling,
      ringdp::Algorithm::Mpi, ringdp::Algorithm::ParameterServer};
  const ringdp::ReduceOp ops[] = {ringdp::ReduceOp::Sum, ringdp::ReduceOp::Average,
                                  ringdp::ReduceOp::Min, ringdp::ReduceOp::Max,
                                  ringdp::ReduceOp::Product};
  Tally tally;
  long rss_before = -1;
  long rss_middle = -1;
  const double start = MPI_Wtime();
  for (int call = 0; call < calls; ++call) {
    if (call == warmup) rss_before = rss_kib();
    if (call == calls / 2) rss_middle = rss_kib();
    // Counts: log-uniform over [1, max_count], with 1 in 8 calls at an awkward small size
    // (0, 1, fewer than the ranks, a prime).
    std::size_t count = 0;
    if (rng() % 8 == 0) {
      const std::size_t small[] = {0, 1, 2, 3, 7, 13, 31, 127};
      count = small[rng() % std::size(small)];
    } else {
      const double e =
          std::uniform_real_distribution<double>(0.0, std::log2(double(max_count)))(rng);
      count = static_cast<std::size_t>(std::exp2(e));
    }
    const int type = static_cast<int>(rng() % 4);
    ringdp::ReduceOp op = ops[rng() % std::size(ops)];
    if (op == ringdp::ReduceOp::Average && type >= 2) op = ringdp::ReduceOp::Sum;  // float only
    const std::size_t a = rng() % std::size(algorithms);
    bool identical = true;
    long wrong = 0;
    switch (type) {
      case 0:
        wrong = one_call<float>(comm, call, count, op, algorithms[a], identical);
        break;
      case 1:
        wrong = one_call<double>(comm, call, count, op, algorithms[a], identical);
        break;
      case 2:
        wrong = one_call<std::int32_t>(comm, call, count, op, algorithms[a], identical);
        break;
      default:
        wrong = one_call<std::int64_t>(comm, call, count, op, algorithms[a], identical);
        break;
    }
    long total_wrong = 0;
    RINGDP_MPI_CHECK(PMPI_Allreduce(&wrong, &total_wrong, 1, MPI_LONG, MPI_SUM, comm.native()));
    ++tally.calls;
    ++tally.per_algorithm[a];
    if (total_wrong > 0) {
      ++tally.mismatched_calls;
      tally.mismatched_elements += total_wrong;
      if (rank == 0) {
        fmt::print("MISMATCH call {}: {} x {} {} {}: {} elements differ from MPI_Allreduce\n", call,
                   count, ringdp::to_string(static_cast<ringdp::DataType>(type)),
                   ringdp::to_string(op), ringdp::to_string(algorithms[a]), total_wrong);
      }
    }
    if (!identical) ++tally.not_identical;
    if (rank == 0 && (call + 1) % 100 == 0) {
      fmt::print("{:5d} calls, {} mismatched, rank 0 RSS {} KiB, {:.1f} s\n", call + 1,
                 tally.mismatched_calls, rss_kib(), MPI_Wtime() - start);
      std::fflush(stdout);
    }
  }
  const long rss_after = rss_kib();
  std::vector<long> before(static_cast<std::size_t>(comm.size()));
  std::vector<long> middle(before.size());
  std::vector<long> after(before.size());
  RINGDP_MPI_CHECK(
      PMPI_Gather(&rss_before, 1, MPI_LONG, before.data(), 1, MPI_LONG, 0, comm.native()));
  RINGDP_MPI_CHECK(
      PMPI_Gather(&rss_middle, 1, MPI_LONG, middle.data(), 1, MPI_LONG, 0, comm.native()));
  RINGDP_MPI_CHECK(
      PMPI_Gather(&rss_after, 1, MPI_LONG, after.data(), 1, MPI_LONG, 0, comm.native()));
  if (rank == 0) {
    fmt::print("\nranks {}  calls {}  seed {}  max count {}  check mode on  time {:.1f} s\n",
               comm.size(), tally.calls, seed, max_count, MPI_Wtime() - start);
    fmt::print("calls per algorithm: auto {} ring {} rd {} mpi {} ps {}\n", tally.per_algorithm[0],
               tally.per_algorithm[1], tally.per_algorithm[2], tally.per_algorithm[3],
               tally.per_algorithm[4]);
    fmt::print(
        "mismatches vs MPI_Allreduce: {} calls, {} elements; results not bit-identical across "
        "ranks: {} calls\n",
        tally.mismatched_calls, tally.mismatched_elements, tally.not_identical);
    // Buffers and MPI's internal pools settle early; a leak per call would keep growing,
    // so the second half's growth is the figure to watch.
    fmt::print(
        "rank  RSS after call {} (KiB)  after call {} (KiB)  at end (KiB)  growth 2nd half (KiB)\n",
        warmup, calls / 2);
    for (std::size_t r = 0; r < before.size(); ++r) {
      fmt::print("{:4d}  {:22d}  {:19d}  {:12d}  {:21d}\n", r, before[r], middle[r], after[r],
                 after[r] - middle[r]);
    }
  }
  const bool failed = tally.mismatched_calls > 0 || tally.not_identical > 0;
  return failed ? 1 : 0;
}
