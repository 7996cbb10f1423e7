// RINGDP_TUNING: the tuning file, read once per process, and the ranks' agreement on it.
//
// Auto's choice and the ring's segment size must be the same on every rank of a
// collective, or the ranks run different algorithms (or cut the same chunk into
// different segments) and deadlock. Each rank reads the file itself, so a file that
// differs between ranks (a node-local copy that was not updated), is missing on one node,
// or fails to parse on one rank only would make the ranks diverge at their first
// collective. So before the first collective on each communicator the ranks agree: a
// load error anywhere becomes the same Error everywhere (agree()), and one reduction of
// the file's content hash checks that all ranks read the same text. The result is cached
// on the communicator as an MPI attribute, so later calls are one local lookup, and the
// lower comm/ layer needs to know nothing of tuning.

#include <fmt/format.h>
#include <mpi.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/detail/mpi_check.hpp"

namespace ringdp {
namespace {

// The attribute marking a communicator whose ranks agreed. MPI_COMM_NULL_COPY_FN: a
// duplicate may hold other ranks' processes (via the caller's communicator) and agrees
// anew. The value is only a marker; MPI never frees it.
int agreed_keyval() {
  static const int keyval = [] {
    int k = MPI_KEYVAL_INVALID;
    RINGDP_MPI_CHECK(
        MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &k, nullptr));
    return k;
  }();
  return keyval;
}

int agreed_marker = 0;

bool already_agreed(MPI_Comm comm) {
  void* value = nullptr;
  int found = 0;
  RINGDP_MPI_CHECK(MPI_Comm_get_attr(comm, agreed_keyval(), &value, &found));
  return found != 0;
}

std::string describe(std::uint64_t hash) {
  return hash == 0 ? "no tuning file (RINGDP_TUNING unset)"
                   : fmt::format("a tuning file with content hash {:016x}", hash);
}

}  // namespace

const TuningTable* tuning_from_environment() {
  // Loaded once (thread-safe static initialisation). A failure is remembered and thrown
  // anew on every call, so that it cannot be missed by a later caller.
  struct Loaded {
    std::optional<TuningTable> table;
    std::string error;
    bool io_error = false;
  };
  static const Loaded loaded = [] {
    Loaded l;
    const char* path = std::getenv("RINGDP_TUNING");
    if (path == nullptr || *path == '\0') return l;
    try {
      l.table = TuningTable::load(path);
    } catch (const IoError& e) {
      l.error = e.cause();
      l.io_error = true;
    } catch (const Error& e) {
      l.error = e.cause();
    }
    return l;
  }();
  if (!loaded.error.empty()) {
    const std::string cause = "RINGDP_TUNING: " + loaded.error;
    if (loaded.io_error) throw IoError(cause);
    throw InvalidArgument(cause);
  }
  return loaded.table ? &*loaded.table : nullptr;
}

void agree_on_tuning(const Communicator& comm) {
  if (already_agreed(comm.native())) return;

  std::string local_error;
  std::uint64_t hash = 0;  // 0: no file on this rank
  try {
    if (const TuningTable* table = tuning_from_environment()) {
      hash = table->hash() == 0 ? 1 : table->hash();
    }
  } catch (const Error& e) {
    local_error = e.cause();
  }
  // Every rank throws the lowest failing rank's message (file and line) if any failed.
  agree(comm, local_error);

  // Same text everywhere? MPI_MIN over {h, ~h} gives min(h) and ~max(h) in one reduction;
  // PMPI_ so that an interposed MPI_Allreduce never sees it.
  std::uint64_t in[2] = {hash, ~hash};
  std::uint64_t out[2] = {0, 0};
  RINGDP_MPI_CHECK(PMPI_Allreduce(in, out, 2, MPI_UINT64_T, MPI_MIN, comm.native()));
  if (out[0] != ~out[1]) {
    // Slow path, on error only: gather the hashes so that every rank names the same
    // rank (the first that differs from rank 0) in the same words.
    std::vector<std::uint64_t> all(static_cast<std::size_t>(comm.size()));
    RINGDP_MPI_CHECK(
        MPI_Allgather(&hash, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm.native()));
    int culprit = 1;
    while (culprit < comm.size() && all[static_cast<std::size_t>(culprit)] == all[0]) ++culprit;
    throw InvalidArgument(
        culprit,
        fmt::format("RINGDP_TUNING differs between ranks: rank 0 reads {}, rank {} reads {}; "
                    "every rank must read the same tuning file, or Auto would choose "
                    "differently on different ranks",
                    describe(all[0]), culprit, describe(all[static_cast<std::size_t>(culprit)])),
        /*collective=*/true);
  }
  RINGDP_MPI_CHECK(MPI_Comm_set_attr(comm.native(), agreed_keyval(), &agreed_marker));
}

}  // namespace ringdp
