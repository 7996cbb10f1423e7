#pragma once
/// \file
/// Compute threads inside one rank: a fixed team that runs the parts of a kernel, and the
/// number of CPUs the rank was given.

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace ringdp::nn {

/// Number of CPUs this process may run on: its affinity mask (`sched_getaffinity`), which is
/// what `mpirun --bind-to` / `--map-by ...:PE=N`, `srun -c N` or `taskset` gave it; the
/// number of online CPUs when the mask cannot be read. At least 1. Local, no MPI.
[[nodiscard]] int affinity_cpu_count();

/// A half-open range [begin, end) of indices, one thread's share of a kernel.
struct IndexRange {
  std::size_t begin = 0;
  std::size_t end = 0;
  [[nodiscard]] std::size_t size() const noexcept { return end - begin; }
  [[nodiscard]] bool empty() const noexcept { return end == begin; }
};

/// Part `part` of `parts` of [0, n): contiguous, in order, the boundaries on multiples of
/// `align` (e.g. 16 floats = one 64-byte cache line, so that two threads never write the
/// same line) except for the last one, n. A function of (n, parts, part, align) only, so a
/// fixed thread count always splits a kernel the same way. Parts may be empty.
[[nodiscard]] IndexRange split_range(std::size_t n, int parts, int part, std::size_t align = 1);

/// Options of a ThreadPool.
struct ThreadPoolOptions {
  /// Kernels with less work than this (multiply-adds of a product, elements of an
  /// element-wise pass) run on the calling thread alone: waking the others would cost more
  /// than they save. Tests pass 1 to split even tiny kernels.
  std::size_t min_parallel_work = std::size_t{1} << 15;
  /// How long a waiting thread spins before it blocks (µs); 0: block at once. Applies only
  /// when the pool has no more threads than the process has CPUs; otherwise it never spins.
  int spin_us = 50;
};

/// Work (multiply-adds of a product) below which a pool whose threads block at once between
/// kernels (spin_us 0) keeps a kernel on the calling thread: waking a blocked worker costs
/// 5-50 µs (more where an idle virtual CPU halts), about what one core needs for a product
/// of this size, so splitting a smaller one only delays it.
inline constexpr std::size_t kBlockingMinParallelWork = std::size_t{1} << 20;

/// The options of a pool whose threads spin `spin_us` (0 when negative) before they block;
/// a pool that blocks at once splits only kernels of at least kBlockingMinParallelWork.
[[nodiscard]] ThreadPoolOptions pool_options_for_spin(int spin_us) noexcept;

/// The CPUs of one rank and the threads that run on them during a training step: the
/// compute threads (a ThreadPool, the calling thread included) and the helper threads beside
/// them (the reducer's progress thread, the loader's reader thread). The helpers mostly wait
/// (the progress thread paces its polls while backward runs, the reader thread waits for
/// the file), so together they are counted as one CPU.
struct CoreBudget {
  int cpus = 1;             ///< affinity_cpu_count() when planned
  int compute_threads = 1;  ///< threads of the ThreadPool, the caller included
  int helper_threads = 0;   ///< other threads that work while the step runs

  /// CPUs the helpers are counted for: 1 when there are any, else 0.
  [[nodiscard]] int reserved_cpus() const noexcept { return helper_threads > 0 ? 1 : 0; }
  /// Compute threads plus the helpers' CPU exceed the rank's CPUs: the pool must not spin
  /// (a spinning thread would hold a core that a thread it waits for needs).
  [[nodiscard]] bool oversubscribed() const noexcept {
    return compute_threads + reserved_cpus() > cpus;
  }
  /// More compute threads than the rank has CPUs: worth a warning.
  [[nodiscard]] bool more_threads_than_cpus() const noexcept { return compute_threads > cpus; }
  /// The options of the rank's ThreadPool: no spinning, and so fewer kernels split
  /// (pool_options_for_spin(0)), when oversubscribed().
  [[nodiscard]] ThreadPoolOptions pool_options() const noexcept;
};

/// Plans the compute threads of a rank that runs `helper_threads` beside them:
/// `requested` >= 1 is taken as given; 0 means one per CPU of the rank (affinity_cpu_count())
/// minus the one the helpers are counted for, at least 1. Throws InvalidArgument when
/// `requested` < 0 or `helper_threads` < 0. Local, no MPI.
[[nodiscard]] CoreBudget plan_cores(int requested, int helper_threads);

/// A fixed team of compute threads: `run(task)` calls task(0) ... task(size() - 1) at once,
/// part 0 on the calling thread and the others on the team's workers, and returns when all
/// are done. Each kernel splits its work statically with split_range(), so which thread
/// computes an element depends only on the thread count, and every element is computed by
/// one thread in the same order as with one thread: results are deterministic for a fixed
/// thread count (no reduction across threads whose order depends on scheduling).
///
/// Workers spin for a short while (ThreadPoolOptions::spin_us) after a part, so the
/// consecutive kernels of a step start without a wake-up, then block in the kernel (futex):
/// between steps, while the gradients are reduced or a batch is read, the reducer's
/// progress thread and the loader's reader thread get the cores. A pool with more threads
/// than the process has CPUs (affinity_cpu_count()) never spins, nor one made with
/// CoreBudget::pool_options() of an oversubscribed budget; every wait ends in a blocking
/// futex wait, so more threads than cores cost wake-ups, never a livelock. A pool of 1 starts no
/// thread and runs task(0) inline. Not an OpenMP team (bench/nn_throughput/README.md has the
/// measurement behind that), so it composes with an application's own OpenMP or BLAS threads and
/// with ThreadSanitizer.
///
/// run() may be called from one thread at a time (calls from several are serialised); a
/// run() from inside a task runs all parts inline. An exception from a task is rethrown by
/// run() once every part has finished (the first by part number).
class ThreadPool {
 public:
  /// `threads` >= 1 compute threads, the calling thread included (threads - 1 workers are
  /// started). Throws InvalidArgument when threads < 1.
  explicit ThreadPool(int threads, ThreadPoolOptions options = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Number of compute threads (workers + the caller).
  [[nodiscard]] int size() const noexcept { return size_; }
  /// Work below which a kernel stays on one thread.
  [[nodiscard]] std::size_t min_parallel_work() const noexcept {
    return options_.min_parallel_work;
  }
  [[nodiscard]] const ThreadPoolOptions& options() const noexcept { return options_; }

  /// Runs task(part) for every part in [0, size()); see the class comment.
  template <class Task>
  void run(Task&& task) {
    using Fn = std::remove_reference_t<Task>;
    run_erased([](void* fn, int part) { (*static_cast<Fn*>(fn))(part); },
               const_cast<void*>(static_cast<const void*>(std::addressof(task))));
  }

 private:
  void run_erased(void (*call)(void*, int), void* task);
  struct Team;
  int size_;
  ThreadPoolOptions options_;
  std::unique_ptr<Team> team_;
};

/// Runs task(part, parts) over the parts of `pool`, or task(0, 1) inline when `pool` is null
/// or `work` is below its min_parallel_work(): how a kernel that may or may not have
/// threads calls them.
template <class Task>
void for_each_part(ThreadPool* pool, std::size_t work, Task&& task) {
  if (pool == nullptr || pool->size() == 1 || work < pool->min_parallel_work()) {
    task(0, 1);
    return;
  }
  const int parts = pool->size();
  pool->run([&](int part) { task(part, parts); });
}

}  // namespace ringdp::nn
