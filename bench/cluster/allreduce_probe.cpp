// A few allreduce timings on the emulated cluster, in ringdp-bench's CSV columns, for use
// until ringdp-bench runs there (scaling.sh uses ringdp-bench when it is built).
//
//   mpirun.sh N ringdp-allreduce-probe [--sizes 1M,16M] [--algos ring,rd,mpi,ps,auto]
//                                       [--reps 3] [--csv FILE]
//
// Each (size, algorithm): one untimed call, then --reps timed calls; a call's time is the
// slowest rank's (the allreduce is over when every rank has its result); the median is
// reported. Every call's result is checked: rank r contributes r + 1 in every element, so
// every element of the float sum must be exactly n(n+1)/2 (small integers are exact).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <ringdp/comm/mpi_check.hpp>
#include <ringdp/ringdp.hpp>

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::size_t parse_bytes(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  std::size_t mult = 1;
  if (*end == 'K' || *end == 'k') mult = std::size_t{1} << 10;
  if (*end == 'M' || *end == 'm') mult = std::size_t{1} << 20;
  if (*end == 'G' || *end == 'g') mult = std::size_t{1} << 30;
  return static_cast<std::size_t>(v) * mult;
}

}  // namespace

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Serialized);
  ringdp::Communicator comm(MPI_COMM_WORLD);
  std::string sizes_arg = "1M,16M", algos_arg = "ring,rd,mpi,ps,auto", csv_path;
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--sizes") sizes_arg = v;
    else if (a == "--algos") algos_arg = v;
    else if (a == "--reps") reps = std::max(1, std::atoi(v.c_str()));
    else if (a == "--csv") csv_path = v;
    else {
      if (comm.rank() == 0) std::fprintf(stderr, "allreduce_probe: unknown option %s\n", a.c_str());
      return 2;  // every rank parses the same arguments, so every rank returns here
    }
  }
  const int n = comm.size();
  const float expected = static_cast<float>(n) * static_cast<float>(n + 1) / 2.0f;
  std::string csv = "bytes,count,type,op,algo,time_us,min_us,max_us,wrong,ranks\n";
  int total_wrong = 0;
  if (comm.rank() == 0) std::printf("%12s %6s %12s %12s %6s\n", "bytes", "algo", "time_us", "busbw_MBps", "wrong");
  for (const std::string& size_text : split(sizes_arg)) {
    const std::size_t bytes = parse_bytes(size_text);
    const std::size_t count = bytes / sizeof(float);
    std::vector<float> data(count);
    for (const std::string& algo_text : split(algos_arg)) {
      const ringdp::Algorithm algo = ringdp::parse_algorithm(algo_text);
      std::vector<double> times;
      long long wrong = 0;
      for (int rep = 0; rep <= reps; ++rep) {
        std::fill(data.begin(), data.end(), static_cast<float>(comm.rank() + 1));
        comm.barrier();
        const double t0 = MPI_Wtime();
        ringdp::allreduce(comm, std::span<float>(data), ringdp::ReduceOp::Sum, algo);
        double t = MPI_Wtime() - t0;
        RINGDP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm.native()));
        wrong += std::count_if(data.begin(), data.end(), [&](float x) { return x != expected; });
        if (rep > 0) times.push_back(t);  // the first call is the untimed warm-up
      }
      RINGDP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_LONG_LONG, MPI_SUM, comm.native()));
      std::sort(times.begin(), times.end());
      const double med = times[times.size() / 2];
      total_wrong += wrong != 0;
      if (comm.rank() == 0) {
        const double busbw = n > 1 ? bytes / med * 2.0 * (n - 1) / n / 1e6 : 0.0;
        std::printf("%12zu %6s %12.1f %12.2f %6lld\n", bytes, algo_text.c_str(), med * 1e6, busbw, wrong);
        std::fflush(stdout);
        char line[256];
        std::snprintf(line, sizeof line, "%zu,%zu,float,sum,%s,%.3f,%.3f,%.3f,%lld,%d\n", bytes, count,
                      algo_text.c_str(), med * 1e6, times.front() * 1e6, times.back() * 1e6, wrong, n);
        csv += line;
      }
    }
  }
  if (comm.rank() == 0 && !csv_path.empty()) {
    // Temporary name, then rename: a crashed run never leaves a half-written CSV.
    const std::string tmp = csv_path + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fputs(csv.c_str(), f);
      std::fclose(f);
      std::rename(tmp.c_str(), csv_path.c_str());
    }
  }
  return total_wrong == 0 ? 0 : 1;
}
