#include "ringdp/comm/environment.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <cstdio>

#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp {
namespace {

int to_mpi(ThreadLevel level) {
  switch (level) {
    case ThreadLevel::Single: return MPI_THREAD_SINGLE;
    case ThreadLevel::Funneled: return MPI_THREAD_FUNNELED;
    case ThreadLevel::Serialized: return MPI_THREAD_SERIALIZED;
    case ThreadLevel::Multiple: return MPI_THREAD_MULTIPLE;
  }
  throw InvalidArgument(fmt::format("unknown thread level {}", static_cast<int>(level)));
}

ThreadLevel from_mpi(int level) {
  if (level == MPI_THREAD_SINGLE) return ThreadLevel::Single;
  if (level == MPI_THREAD_FUNNELED) return ThreadLevel::Funneled;
  if (level == MPI_THREAD_SERIALIZED) return ThreadLevel::Serialized;
  return ThreadLevel::Multiple;
}

}  // namespace

int world_rank() noexcept {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

const char* to_string(ThreadLevel level) noexcept {
  switch (level) {
    case ThreadLevel::Single: return "single";
    case ThreadLevel::Funneled: return "funneled";
    case ThreadLevel::Serialized: return "serialized";
    case ThreadLevel::Multiple: return "multiple";
  }
  return "unknown";
}

Environment::Environment(ThreadLevel required) : requested_(required) { init(nullptr, nullptr); }

Environment::Environment(int& argc, char**& argv, ThreadLevel required) : requested_(required) {
  init(&argc, &argv);
}

void Environment::init(int* argc, char*** argv) {
  // From here on, errors thrown anywhere in ringdp name this process's rank.
  detail::set_error_rank_source(&world_rank);
  if (initialized()) {
    provided_ = thread_level();
    return;
  }
  if (finalized()) throw Error("MPI was already finalized; it cannot be initialised again");
  int provided = MPI_THREAD_SINGLE;
  RINGDP_MPI_CHECK(MPI_Init_thread(argc, argv, to_mpi(requested_), &provided));
  owns_ = true;
  provided_ = from_mpi(provided);
}

Environment::~Environment() {
  if (!owns_ || finalized()) return;
  if (MPI_Finalize() != MPI_SUCCESS) {
    std::fprintf(stderr, "ringdp: rank %d: MPI_Finalize failed\n", world_rank());
  }
}

bool Environment::initialized() noexcept {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}

bool Environment::finalized() noexcept {
  int flag = 0;
  MPI_Finalized(&flag);
  return flag != 0;
}

ThreadLevel Environment::thread_level() {
  int level = MPI_THREAD_SINGLE;
  RINGDP_MPI_CHECK(MPI_Query_thread(&level));
  return from_mpi(level);
}

void require_thread_level(ThreadLevel needed, const char* what) {
  const ThreadLevel have = Environment::thread_level();
  if (static_cast<int>(have) < static_cast<int>(needed)) {
    throw Error(fmt::format(
        "{} needs MPI thread level '{}' but MPI provides only '{}'; initialise MPI with "
        "MPI_Init_thread(..., MPI_THREAD_{}, ...) or ringdp::Environment(ThreadLevel::{})",
        what, to_string(needed), to_string(have),
        needed == ThreadLevel::Multiple ? "MULTIPLE" : "SERIALIZED",
        needed == ThreadLevel::Multiple ? "Multiple" : "Serialized"));
  }
}

}  // namespace ringdp
