// RINGDP_TUNING: the tuning file, read once per process, and the ranks' agreement on it.
//
// Auto's choice and the ring's segment size must be the same on every rank of a
// collective, or the ranks run different algorithms (or cut the same chunk into
// different segments) and deadlock. Each rank reads the file itself, so a file that
// differs between ranks (a node-local copy that was not updated), is missing on one node,
// or fails to parse on one rank only would make the ranks diverge at their first
// collective. So before the first collective on each communicator the ranks agree: one
// small reduction tells whether any rank failed to load the file and whether all read the
// same text (a hash); a load error anywhere then becomes the same InvalidArgument
// everywhere (through agree()), and differing texts one naming the first rank that differs. The
// result is cached on the communicator as an MPI attribute, so later calls are one local lookup,
// and the lower comm/ layer needs to know nothing of tuning. Every new communicator agrees
// anew (one small reduction), with no shortcut for communicators of processes that agreed
// before: the cost is once per communicator, and the plain agreement is right in every case.
//
// The ranks wait for each other here, at the first collective on a communicator, so the
// waits go through detail::wait like every other wait of a collective: a rank that never
// arrives shows in the stall inspector's reports instead of hanging the others silently.
// Its non-blocking reduction is Open MPI's slower libnbc one (see allreduce_mpi.cpp), which
// costs nothing measurable once per communicator.

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
#include "ringdp/detail/wait.hpp"

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

void mark_agreed(MPI_Comm comm) {
  RINGDP_MPI_CHECK(MPI_Comm_set_attr(comm, agreed_keyval(), &agreed_marker));
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
  // One reduction answers both questions, so that a fresh communicator costs a single
  // small collective: MPI_MIN over {ok, h, ~h} gives 0 when any rank failed, min(h) and
  // ~max(h). PMPI_ so that an interposed MPI_Allreduce never sees it.
  const std::uint64_t in[3] = {local_error.empty() ? 1u : 0u, hash, ~hash};
  std::uint64_t out[3] = {0, 0, 0};
  MPI_Request request = MPI_REQUEST_NULL;
  RINGDP_MPI_CHECK(PMPI_Iallreduce(in, out, 3, MPI_UINT64_T, MPI_MIN, comm.native(), &request));
  detail::wait(comm, request);
  if (out[0] == 0) {
    // Some rank could not load the file: every rank throws that rank's message (the
    // lowest failing rank's, with its file and line), and no rank goes on. agree() throws
    // a plain Error, whatever the failing rank's was; a bad RINGDP_TUNING (unreadable or
    // malformed) is bad input, so every rank throws it as InvalidArgument (the C API's
    // RINGDP_ERROR_INVALID_ARGUMENT), not as the check-mode mismatch a plain Error means.
    try {
      agree(comm, local_error);
    } catch (const MpiError&) {
      throw;
    } catch (const Error& e) {
      throw InvalidArgument(e.rank(), e.cause(), /*collective=*/true);
    }
  }
  if (out[1] != ~out[2]) {
    // The ranks read different texts. Slow path, on error only: gather the hashes so that
    // every rank names the same rank (the first that differs from rank 0) in the same words.
    std::vector<std::uint64_t> all(static_cast<std::size_t>(comm.size()));
    RINGDP_MPI_CHECK(MPI_Iallgather(&hash, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T,
                                    comm.native(), &request));
    detail::wait(comm, request);
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
  mark_agreed(comm.native());
}

}  // namespace ringdp
