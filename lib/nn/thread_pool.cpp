#include "ringdp/nn/thread_pool.hpp"

#include <fmt/format.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "ringdp/error.hpp"

namespace ringdp::nn {
namespace {

// Set while this thread runs a part, so that a run() from inside a task runs inline
// instead of waiting for workers that are busy with the outer run().
thread_local bool t_in_task = false;

// A waiting thread spins for ThreadPoolOptions::spin_us, then blocks. The kernels of one
// step follow each other within microseconds, so workers that spin a little start the next
// kernel without a futex wake-up; between steps they block, leaving the cores to the
// progress and reader threads. A pool with more threads than the process has CPUs never
// spins: a spinning thread would hold the core the thread it waits for needs.

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A counter that threads wait on for a change. Blocking is a plain futex wait, not
// std::atomic::wait: libstdc++'s wait calls sched_yield() a few times first, which on a
// loaded machine hands the core to another process and made an empty parallel region take
// milliseconds. `sleepers` lets a change skip the wake-up system call when nobody sleeps;
// it and `value` are accessed sequentially consistently, so either the sleeper sees the
// new value before it sleeps, or the changer sees the sleeper and wakes it (and FUTEX_WAIT
// returns at once if the value has changed in between).
struct WaitCounter {
  std::atomic<std::uint32_t> value{0};
  std::atomic<int> sleepers{0};

  void wake_all() {
    if (sleepers.load(std::memory_order_seq_cst) > 0) {
      syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&value), FUTEX_WAKE_PRIVATE, INT_MAX,
              nullptr, nullptr, 0);
    }
  }
  void add(std::uint32_t n) {
    value.fetch_add(n, std::memory_order_seq_cst);
    wake_all();
  }
  // Returns true when this took the value to 0.
  bool subtract_one() {
    const bool last = value.fetch_sub(1, std::memory_order_seq_cst) == 1;
    if (last) wake_all();
    return last;
  }

  // Waits until the value differs from `old` and returns the new value (acquire).
  std::uint32_t await_change(std::uint32_t old, std::chrono::microseconds spin) {
    std::uint32_t v = value.load(std::memory_order_acquire);
    if (v != old) return v;
    if (spin.count() > 0) {
      const auto deadline = std::chrono::steady_clock::now() + spin;
      for (unsigned i = 1;; ++i) {
        cpu_relax();
        v = value.load(std::memory_order_acquire);
        if (v != old) return v;
        if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
      }
    }
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    while ((v = value.load(std::memory_order_seq_cst)) == old) {
      syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&value), FUTEX_WAIT_PRIVATE, old, nullptr,
              nullptr, 0);
    }
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    return v;
  }
};

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word must be the atomic itself");

}  // namespace

int affinity_cpu_count() {
  const long configured = sysconf(_SC_NPROCESSORS_CONF);
  const int cpus = configured > 0 ? static_cast<int>(configured) : 1;
  cpu_set_t* set = CPU_ALLOC(static_cast<unsigned>(std::max(cpus, CPU_SETSIZE)));
  if (set != nullptr) {
    const std::size_t bytes = CPU_ALLOC_SIZE(static_cast<unsigned>(std::max(cpus, CPU_SETSIZE)));
    CPU_ZERO_S(bytes, set);
    int count = 0;
    if (sched_getaffinity(0, bytes, set) == 0) count = CPU_COUNT_S(bytes, set);
    CPU_FREE(set);
    if (count > 0) return count;
  }
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

ThreadPoolOptions pool_options_for_spin(int spin_us) noexcept {
  ThreadPoolOptions options;
  options.spin_us = std::max(spin_us, 0);
  if (options.spin_us == 0) options.min_parallel_work = kBlockingMinParallelWork;
  return options;
}

ThreadPoolOptions CoreBudget::pool_options() const noexcept {
  return pool_options_for_spin(oversubscribed() ? 0 : ThreadPoolOptions{}.spin_us);
}

CoreBudget plan_cores(int requested, int helper_threads) {
  if (requested < 0 || helper_threads < 0) {
    throw InvalidArgument(fmt::format(
        "compute threads must be >= 0 (0: one per CPU) and helper threads >= 0, got {} and {}",
        requested, helper_threads));
  }
  CoreBudget budget{.cpus = affinity_cpu_count(), .helper_threads = helper_threads};
  budget.compute_threads =
      requested > 0 ? requested : std::max(1, budget.cpus - budget.reserved_cpus());
  return budget;
}

IndexRange split_range(std::size_t n, int parts, int part, std::size_t align) {
  if (parts <= 1) return {0, n};
  align = std::max<std::size_t>(align, 1);
  // Whole aligned units, dealt as evenly as possible (the first `extra` parts get one more);
  // the last part also takes the tail of n that is not a whole unit.
  const std::size_t units = n / align;
  const auto p = static_cast<std::size_t>(parts);
  const auto k = static_cast<std::size_t>(part);
  const std::size_t base = units / p;
  const std::size_t extra = units % p;
  const std::size_t begin = (k * base + std::min(k, extra)) * align;
  const std::size_t end = k + 1 == p ? n : ((k + 1) * base + std::min(k + 1, extra)) * align;
  return {begin, end};
}

// The team's shared state. The caller publishes (call, task) and then bumps `generation`;
// each worker sees the new generation (acquire), runs its part, and decrements `remaining`
// (release); the caller waits for 0 (acquire). So everything a part wrote is visible to the
// caller when run() returns, and the next run's task to every worker.
struct ThreadPool::Team {
  std::mutex run_mutex;  // one run() at a time
  WaitCounter generation;
  WaitCounter remaining;
  std::atomic<bool> stop{false};
  void (*call)(void*, int) = nullptr;
  void* task = nullptr;
  std::vector<std::exception_ptr> errors;  // one per part
  std::vector<std::thread> workers;
  std::chrono::microseconds spin{0};

  void work(int part) {
    std::uint32_t seen = 0;
    while (true) {
      seen = generation.await_change(seen, spin);
      if (stop.load(std::memory_order_acquire)) return;
      t_in_task = true;
      try {
        call(task, part);
      } catch (...) {
        errors[static_cast<std::size_t>(part)] = std::current_exception();
      }
      t_in_task = false;
      remaining.subtract_one();
    }
  }
};

ThreadPool::ThreadPool(int threads, ThreadPoolOptions options) : size_(threads), options_(options) {
  if (threads < 1) {
    throw InvalidArgument(fmt::format("ThreadPool: needs at least 1 thread, got {}", threads));
  }
  if (threads == 1) return;
  team_ = std::make_unique<Team>();
  team_->spin =
      std::chrono::microseconds(threads <= affinity_cpu_count() ? std::max(options.spin_us, 0) : 0);
  team_->errors.resize(static_cast<std::size_t>(threads));
  team_->workers.reserve(static_cast<std::size_t>(threads - 1));
  for (int part = 1; part < threads; ++part) {
    team_->workers.emplace_back([team = team_.get(), part] { team->work(part); });
    pthread_setname_np(team_->workers.back().native_handle(), "ringdp-compute");
  }
}

ThreadPool::~ThreadPool() {
  if (!team_) return;
  team_->stop.store(true, std::memory_order_release);
  team_->generation.add(1);
  for (std::thread& t : team_->workers) t.join();
}

void ThreadPool::run_erased(void (*call)(void*, int), void* task) {
  if (size_ == 1 || t_in_task) {
    for (int part = 0; part < size_; ++part) call(task, part);
    return;
  }
  Team& team = *team_;
  const std::lock_guard<std::mutex> lock(team.run_mutex);
  team.call = call;
  team.task = task;
  std::fill(team.errors.begin(), team.errors.end(), nullptr);
  team.remaining.value.store(static_cast<std::uint32_t>(size_ - 1), std::memory_order_relaxed);
  team.generation.add(1);
  t_in_task = true;
  try {
    call(task, 0);
  } catch (...) {
    team.errors[0] = std::current_exception();
  }
  t_in_task = false;
  // The workers use `task`, which lives in the caller's frame: wait for all of them even
  // when part 0 threw.
  std::uint32_t left = team.remaining.value.load(std::memory_order_acquire);
  while (left != 0) left = team.remaining.await_change(left, team.spin);
  for (const std::exception_ptr& e : team.errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace ringdp::nn
