// A job for shm_faults.py: every rank loops shm allreduces on an ordinary buffer and on a
// SharedBuffer, printing "ready" once the window exists; in the middle of the loop one
// rank (--victim) dies by SIGKILL: "before" a call (the others wait for its arrival), or
// "inside" one (one second after it arrived, waiting for the others, who sleep). The others
// must not hang: the launcher ends the job when a rank dies. "never": a clean run.
//
//   shm_fault_driver --victim R --when before|inside|never --calls N

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/shared_buffer.hpp"
#include "ringdp/comm/environment.hpp"

int main(int argc, char** argv) {
  ringdp::Environment env(argc, argv, ringdp::ThreadLevel::Single);
  int victim = 1;
  int calls = 20;
  std::string when = "inside";
  CLI::App app{"shm_fault_driver"};
  app.add_option("--victim", victim);
  app.add_option("--calls", calls);
  app.add_option("--when", when);
  CLI11_PARSE(app, argc, argv);

  ringdp::Communicator comm(MPI_COMM_WORLD);
  const std::size_t count = std::size_t{4} << 20;  // 16 MiB of floats: many rounds
  ringdp::SharedBuffer<float> shared(comm, count);
  std::vector<float> ordinary(count, 1.0f);
  for (float& x : shared.span()) x = 1.0f;
  ringdp::allreduce(comm, shared.span(), ringdp::ReduceOp::Max, ringdp::Algorithm::Shm);
  if (comm.rank() == 0) {
    std::printf("ready\n");
    std::fflush(stdout);
  }
  const bool me = comm.rank() == victim;
  for (int call = 0; call < calls; ++call) {
    if (call == calls / 2 && when == "before" && me) raise(SIGKILL);
    if (call == calls / 2 && when == "inside") {
      if (me) {
        // Dies one second into this call, where it waits for the others (asleep): after
        // its arrival, with its input announced.
        signal(SIGALRM, [](int) { raise(SIGKILL); });
        alarm(1);
      } else {
        sleep(3);
      }
    }
    ringdp::allreduce(comm, std::span<float>(ordinary), ringdp::ReduceOp::Max,
                      ringdp::Algorithm::Shm);
    ringdp::allreduce(comm, shared.span(), ringdp::ReduceOp::Max, ringdp::Algorithm::Shm);
  }
  if (comm.rank() == 0) std::printf("done\n");
  return 0;
}
