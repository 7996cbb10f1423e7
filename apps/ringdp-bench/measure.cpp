#include "measure.hpp"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/shared_buffer.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/mpi_types.hpp"
#include "ringdp/error.hpp"
#include "sizes.hpp"
#include "traffic.hpp"
#include "verification.hpp"

namespace ringdp::bench {
namespace {

// Bounds the per-iteration time log (8 bytes each) for messages of a microsecond or less.
constexpr int kMaxIterations = 200000;

// One allreduce of the algorithm under test. The `mpi` algorithm calls the MPI library's
// public MPI_Allreduce symbol here (ringdp's own Mpi algorithm calls PMPI_Allreduce), so
// that a run under LD_PRELOAD=libringdp_mpi.so measures the interposed path, and a run
// without it measures plain MPI. Average has no MPI operation: ringdp's Mpi path (sum,
// then divide) serves it. The type and op mappings are verification.hpp's.
template <Reducible T>
void run_allreduce(const Communicator& comm, std::span<T> data, ReduceOp op, Algorithm algorithm) {
  if (algorithm == Algorithm::Mpi && op != ReduceOp::Average) {
    RINGDP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data.data(), checked_mpi_count(data.size()),
                                   mpi_datatype<T>(), mpi_op(op), comm.native()));
    return;
  }
  allreduce(comm, data, op, algorithm);
}

// Runs every algorithm at every size for one element type. The three buffers are
// allocated once at the largest size and used by prefix, so that their pages are
// touched by the first size that needs them and stay mapped afterwards. With --shared the
// working buffer is a SharedBuffer (collective: every rank allocates the same size).
//
// Entries of a size: the algorithms of options.algorithms in order, then the floor (when
// measured), which takes part in the same interleaved blocks like an algorithm.
template <Reducible T>
class Runner {
 public:
  Runner(const Communicator& comm, const Options& options, std::size_t max_count)
      : comm_(comm),
        options_(options),
        input_(std::make_unique_for_overwrite<T[]>(max_count)),
        reference_(std::make_unique_for_overwrite<T[]>(max_count)) {
    if (options.shared) {
      shared_work_.emplace(comm, max_count);
      work_ = shared_work_->data();
    } else {
      private_work_ = std::make_unique_for_overwrite<T[]>(max_count);
      work_ = private_work_.get();
    }
  }

  std::vector<Row> measure(std::size_t count, std::uint64_t size_index) {
    const std::span<T> input(input_.get(), count);
    const std::span<T> work(work_, count);
    const std::vector<std::uint64_t> wrong = verify(count, size_index);

    // 2. Warm-up, and the iteration count. With --iters the count is given; otherwise the
    // warm-up doubles as calibration: blocks of 1, 2, 4, ... calls until one lasts a
    // tenth of the point's budget, timed on the slowest rank (MPI_MAX), so that every
    // rank computes the same count and the ranks never disagree on how many calls follow.
    std::vector<int> iterations(entries(), options_.iters);
    for (std::size_t a = 0; a < entries(); ++a) {
      reset(work, input);
      if (options_.iters > 0) {
        for (int w = 0; w < options_.warmup; ++w) run_entry(a, work);
      } else {
        iterations[a] = calibrate(work, a);
      }
    }
    const std::vector<std::vector<double>> seconds = timed_blocks(work, input, iterations);
    return rows_of(count, seconds, iterations, wrong);
  }

 private:
  std::size_t entries() const noexcept {
    return options_.algorithms.size() + (options_.floor ? 1 : 0);
  }
  bool is_floor(std::size_t a) const noexcept { return a == options_.algorithms.size(); }

  // One call of entry a: an allreduce of the algorithm, or the floor kernel (its callers
  // start the ranks together with a barrier before the timer).
  void run_entry(std::size_t a, std::span<T> work) {
    if (is_floor(a)) {
      stream_in_place(work);
      return;
    }
    run_allreduce(comm_, work, options_.op, options_.algorithms[a]);
  }

  // 1. Correctness, outside any timing: fresh input for this size, the reference from the
  // MPI library, then each algorithm on a copy of the same input. Counts summed over ranks.
  std::vector<std::uint64_t> verify(std::size_t count, std::uint64_t size_index) {
    const std::span<T> input(input_.get(), count);
    const std::span<T> reference(reference_.get(), count);
    const std::span<T> work(work_, count);
    const std::vector<Algorithm>& algorithms = options_.algorithms;
    fill_input(input, options_.op, comm_.rank(), comm_.size(), options_.seed, size_index);
    reference_allreduce<T>(comm_.native(), input, reference, options_.op);
    std::vector<std::uint64_t> wrong(algorithms.size(), 0);
    for (std::size_t a = 0; a < algorithms.size(); ++a) {
      std::copy(input.begin(), input.end(), work.begin());
      run_allreduce(comm_, work, options_.op, algorithms[a]);
      if (options_.corrupt_for_testing == algorithms[a] && comm_.rank() == comm_.size() - 1 &&
          count > 0) {
        work[count / 2] = static_cast<T>(work[count / 2] + T(1));
      }
      wrong[a] = count_differences<T>(work, reference);
    }
    RINGDP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, wrong.data(), static_cast<int>(wrong.size()),
                                   MPI_UINT64_T, MPI_SUM, comm_.native()));
    return wrong;
  }

  // 3. Timed blocks. Repetition r runs one block of each entry, starting with entry r (mod
  // count), so a slow phase of the machine (another job, a frequency change) lands on every
  // entry alike. Each block starts from the same input and after a barrier; each call is
  // timed alone, then the slowest rank's time of each call is what counts (an allreduce is
  // done when the last rank has its result). Floor calls start after a barrier each, so
  // that all ranks stream at once.
  std::vector<std::vector<double>> timed_blocks(std::span<T> work, std::span<const T> input,
                                                const std::vector<int>& iterations) {
    const std::size_t n = entries();
    std::vector<std::vector<double>> seconds(n);
    for (std::size_t a = 0; a < n; ++a) seconds[a].reserve(static_cast<std::size_t>(iterations[a]));
    const int reps = options_.repetitions;
    for (int rep = 0; rep < reps; ++rep) {
      for (std::size_t j = 0; j < n; ++j) {
        const std::size_t a = (j + static_cast<std::size_t>(rep)) % n;
        const int block = iterations[a] / reps + (rep < iterations[a] % reps ? 1 : 0);
        if (block == 0) continue;
        reset(work, input);
        comm_.barrier();
        for (int i = 0; i < block; ++i) {
          if (is_floor(a) && i > 0) comm_.barrier();
          const double start = MPI_Wtime();
          run_entry(a, work);
          seconds[a].push_back(MPI_Wtime() - start);
        }
      }
    }
    for (std::size_t a = 0; a < n; ++a) {
      RINGDP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, seconds[a].data(),
                                     static_cast<int>(seconds[a].size()), MPI_DOUBLE, MPI_MAX,
                                     comm_.native()));
      for (double& s : seconds[a]) s *= 1e6;
    }
    return seconds;
  }

  std::vector<Row> rows_of(std::size_t count, const std::vector<std::vector<double>>& seconds,
                           const std::vector<int>& iterations,
                           const std::vector<std::uint64_t>& wrong) const {
    const std::size_t n_algorithms = options_.algorithms.size();
    const double floor_us = options_.floor ? spread_of(seconds[n_algorithms]).median : 0.0;
    std::vector<Row> rows(n_algorithms);
    for (std::size_t a = 0; a < n_algorithms; ++a) {
      Row& row = rows[a];
      row.bytes = count * sizeof(T);
      row.count = count;
      row.algorithm = options_.algorithms[a];
      row.runs = resolve_algorithm(row.algorithm, row.bytes, comm_.size(), comm_.node_layout());
      row.time_us = spread_of(seconds[a]);
      row.iterations = iterations[a];
      row.wrong = wrong[a];
      row.floor_us = floor_us;
      row.traffic_bytes =
          memory_traffic(row.runs, row.bytes, comm_.size(), comm_.node_layout(), options_.shared);
    }
    return rows;
  }

  // Restores the working buffer to the input before a block. Outside the timers; it keeps
  // every block on the same values (in-place sums grow by a factor n per call, products
  // drift to 0 or infinity), and it brings the buffer into cache as a freshly computed
  // gradient would be.
  void reset(std::span<T> work, std::span<const T> input) {
    std::memcpy(work.data(), input.data(), input.size_bytes());
  }

  int calibrate(std::span<T> work, std::size_t entry) {
    const double target = options_.point_seconds / 10;
    int calls = std::max(1, options_.warmup);
    for (;;) {
      comm_.barrier();
      const double start = MPI_Wtime();
      for (int i = 0; i < calls; ++i) {
        // The floor's timed calls each start after a barrier: counted here too, so that a
        // point's calls fit its time budget however short the floor's own call is.
        if (is_floor(entry) && i > 0) comm_.barrier();
        run_entry(entry, work);
      }
      double elapsed = MPI_Wtime() - start;
      RINGDP_MPI_CHECK(
          MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, comm_.native()));
      if (elapsed >= target || calls >= kMaxIterations) {
        const double per_call = elapsed / calls;
        const double wanted = std::ceil(options_.point_seconds / std::max(per_call, 1e-9));
        return static_cast<int>(std::clamp<double>(wanted, options_.min_iters, kMaxIterations));
      }
      calls *= 2;
    }
  }

  const Communicator& comm_;
  const Options& options_;
  std::unique_ptr<T[]> input_;
  std::unique_ptr<T[]> reference_;
  std::unique_ptr<T[]> private_work_;
  std::optional<SharedBuffer<T>> shared_work_;
  T* work_ = nullptr;
};

template <Reducible T>
std::vector<Row> run_typed(const Communicator& comm, const Options& options,
                           const std::function<void(std::span<const Row>)>& on_size) {
  const std::vector<std::size_t> counts =
      message_counts(options.min_bytes, options.max_bytes, options.factor, sizeof(T));
  Runner<T> runner(comm, options, counts.empty() ? 0 : counts.back());
  std::vector<Row> all;
  for (std::size_t s = 0; s < counts.size(); ++s) {
    std::vector<Row> rows = runner.measure(counts[s], s);
    on_size(rows);
    all.insert(all.end(), rows.begin(), rows.end());
  }
  return all;
}

}  // namespace

std::vector<Row> run_benchmark(const Communicator& comm, const Options& options,
                               const std::function<void(std::span<const Row>)>& on_size) {
  switch (options.type) {
    case DataType::Float32:
      return run_typed<float>(comm, options, on_size);
    case DataType::Float64:
      return run_typed<double>(comm, options, on_size);
    case DataType::Int32:
      return run_typed<std::int32_t>(comm, options, on_size);
    case DataType::Int64:
      return run_typed<std::int64_t>(comm, options, on_size);
  }
  throw InvalidArgument("unknown data type");
}

std::size_t bytes_needed_per_rank(const Options& options) {
  const std::size_t element = size_of(options.type);
  const std::size_t largest = options.max_bytes / element * element;
  return 4 * largest;
}

}  // namespace ringdp::bench
