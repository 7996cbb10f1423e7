// ringdp's compute threads (nn::ThreadPool) against an OpenMP team (the compiler's runtime,
// libgomp with GCC) on what a training step asks of them: the measurement behind the choice
// of a pool of ringdp's own.
//
//   ringdp-bench-pool-vs-openmp --threads 2
//
// Per round, interleaved: (1) the cost of one parallel region with nothing in it, back to
// back (a step runs about a dozen kernels, each one region); (2) the CPU time the process
// burns per gap when each region is followed by a --gap-us pause of the calling thread,
// as between two steps while the gradients are reduced: CPU the idle team takes from the
// reducer's progress thread and the loader's reader thread. OpenMP runs with whatever
// OMP_WAIT_POLICY / GOMP_SPINCOUNT the environment sets (compare unset and passive).
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ringdp/nn/thread_pool.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::atomic<long> g_sink{0};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int regions = 20000;
  int gaps = 200;
  int gap_us = 2000;
  int rounds = 5;
  int spin_us = ringdp::nn::ThreadPoolOptions{}.spin_us;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--threads") threads = v;
    if (a == "--regions") regions = v;
    if (a == "--gaps") gaps = v;
    if (a == "--gap-us") gap_us = v;
    if (a == "--rounds") rounds = v;
    if (a == "--spin-us") spin_us = v;
  }
  ringdp::nn::ThreadPool pool(threads, {.spin_us = spin_us});
  omp_set_num_threads(threads);
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  std::printf(
      "# %d threads on %d CPU(s); pool spin %d us; OMP_WAIT_POLICY=%s; medians of %d rounds\n",
      threads, ringdp::nn::affinity_cpu_count(), spin_us, policy ? policy : "(unset)", rounds);
  std::vector<double> pool_region, omp_region, pool_burn, omp_burn;
  const auto gap = std::chrono::microseconds(gap_us);
  for (int round = 0; round < rounds; ++round) {
    double t = wall_seconds();
    for (int i = 0; i < regions; ++i) pool.run([](int part) { g_sink += part; });
    pool_region.push_back((wall_seconds() - t) / regions);
    t = wall_seconds();
    for (int i = 0; i < regions; ++i) {
#pragma omp parallel
      g_sink += omp_get_thread_num();
    }
    omp_region.push_back((wall_seconds() - t) / regions);

    double c = process_cpu_seconds();
    for (int i = 0; i < gaps; ++i) {
      pool.run([](int part) { g_sink += part; });
      std::this_thread::sleep_for(gap);
    }
    pool_burn.push_back((process_cpu_seconds() - c) / gaps);
    c = process_cpu_seconds();
    for (int i = 0; i < gaps; ++i) {
#pragma omp parallel
      g_sink += omp_get_thread_num();
      std::this_thread::sleep_for(gap);
    }
    omp_burn.push_back((process_cpu_seconds() - c) / gaps);
  }
  std::printf("%-8s %16s %22s\n", "team", "empty_region_us", "cpu_us_per_gap");
  std::printf("%-8s %16.2f %22.0f\n", "pool", median(pool_region) * 1e6, median(pool_burn) * 1e6);
  std::printf("%-8s %16.2f %22.0f\n", "openmp", median(omp_region) * 1e6, median(omp_burn) * 1e6);
  std::printf("# cpu_us_per_gap: CPU time of the whole process per region + %d us pause\n", gap_us);
  return 0;
}
