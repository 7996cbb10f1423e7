#include "ringdp/comm/agreement.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <new>

#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp {
namespace {

// Encodes an ErrorKind for the wire; anything unknown decodes as Generic.
int encode(ErrorKind kind) { return static_cast<int>(kind); }
ErrorKind decode(int value) {
  switch (value) {
    case static_cast<int>(ErrorKind::Mpi): return ErrorKind::Mpi;
    case static_cast<int>(ErrorKind::Io): return ErrorKind::Io;
    case static_cast<int>(ErrorKind::InvalidArgument): return ErrorKind::InvalidArgument;
    case static_cast<int>(ErrorKind::Mismatch): return ErrorKind::Mismatch;
    default: return ErrorKind::Generic;
  }
}

// The failure path of an agreement, once the lowest failing rank is known: how many
// failed, then that rank's kind and message to everyone; every rank throws it.
[[noreturn]] void throw_agreed_failure(const Communicator& comm, int lowest,
                                       const std::optional<Failure>& local) {
  const int failed = local ? 1 : 0;
  int failures = 0;
  const bool sender = comm.rank() == lowest;
  int header[2] = {sender ? encode(local->kind) : 0,
                   sender ? checked_mpi_count(local->cause.size()) : 0};
  {
    // Declared after the buffers its requests use, so that if a wait throws it completes
    // them before the buffers go (comm/requests.hpp).
    detail::Requests flight(comm);
    RINGDP_MPI_CHECK(PMPI_Iallreduce(&failed, &failures, 1, MPI_INT, MPI_SUM, comm.native(),
                                     flight.collective()));
    RINGDP_MPI_CHECK(MPI_Ibcast(header, 2, MPI_INT, lowest, comm.native(), flight.collective()));
    flight.wait_all();
  }
  std::string cause(static_cast<std::size_t>(header[1]), '\0');
  if (sender) cause = local->cause;
  {
    detail::Requests flight(comm);
    RINGDP_MPI_CHECK(
        MPI_Ibcast(cause.data(), header[1], MPI_CHAR, lowest, comm.native(), flight.collective()));
    flight.wait_all();
  }
  if (failures > 1)
    cause += fmt::format(" (and {} other rank{} failed)", failures - 1, failures > 2 ? "s" : "");
  throw_error(decode(header[0]), lowest, std::move(cause), /*collective=*/true);
}

}  // namespace

Failure current_failure() {
  try {
    throw;
  } catch (const Error& e) {
    return {e.kind(), e.cause()};
  } catch (const std::bad_alloc&) {
    return {ErrorKind::Generic, "out of memory"};
  } catch (const std::exception& e) {
    return {ErrorKind::Generic, e.what()};
  } catch (...) {
    return {ErrorKind::Generic, "unknown exception"};
  }
}

void agree(const Communicator& comm, std::string_view local_error) {
  if (local_error.empty()) return agree(comm, std::nullopt);
  agree(comm, Failure{ErrorKind::Generic, std::string(local_error)});
}

void agree(const Communicator& comm, const std::optional<Failure>& local) {
  agree_equal(comm, {}, {}, ErrorKind::Mismatch, local);
}

std::string Disagreement::ranks_text() const {
  // Consecutive ranks as ranges: "1-4,7".
  std::string text;
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += j > i + 1 ? fmt::format("{}-{}", ranks[i], ranks[j])
            : j == i  ? fmt::format("{}", ranks[i])
                      : fmt::format("{},{}", ranks[i], ranks[j]);
    i = j + 1;
  }
  return text;
}

void agree_equal(const Communicator& comm, std::span<const std::int64_t> values,
                 const std::function<std::string(const Disagreement&)>& describe,
                 ErrorKind kind, const std::optional<Failure>& local) {
  // Ranks wait for each other here, so it counts as a collective of its own, and waits
  // through detail::wait: a rank still busy (rank 0 writing a checkpoint the others agree
  // on) shows up in the stall inspector instead of a silent hang.
  const detail::CollectiveScope scope(comm, "agree");
  // One reduction answers both questions. Element 0: the lowest failing rank (the rank
  // count when none failed). Then each value and its bitwise complement: MPI_MIN yields
  // min(v) and min(~v) = ~max(v), and a value is the same everywhere exactly when
  // min == max. (The complement, unlike the negation, cannot overflow.) PMPI_ so that the
  // agreement never goes through an interposed MPI_Allreduce.
  const std::size_t n = values.size();
  std::vector<std::int64_t> in(1 + 2 * n);
  std::vector<std::int64_t> out(1 + 2 * n);
  in[0] = local ? comm.rank() : comm.size();
  for (std::size_t i = 0; i < n; ++i) {
    in[1 + i] = values[i];
    in[1 + n + i] = ~values[i];
  }
  // After the buffers: if the wait throws, it completes the reduction before they go.
  detail::Requests flight(comm);
  RINGDP_MPI_CHECK(PMPI_Iallreduce(in.data(), out.data(), checked_mpi_count(in.size()), MPI_INT64_T,
                                   MPI_MIN, comm.native(), flight.collective()));
  flight.wait_all();
  if (out[0] < comm.size()) throw_agreed_failure(comm, static_cast<int>(out[0]), local);
  bool same = true;
  for (std::size_t i = 0; i < n; ++i) same = same && out[1 + i] == ~out[1 + n + i];
  if (same) return;

  // Slow path, on a mismatch only: gather every rank's values so that every rank builds
  // the same message about the same ranks.
  std::vector<std::int64_t> all(n * static_cast<std::size_t>(comm.size()));
  detail::Requests gather(comm);
  RINGDP_MPI_CHECK(MPI_Iallgather(values.data(), checked_mpi_count(n), MPI_INT64_T, all.data(),
                                  checked_mpi_count(n), MPI_INT64_T, comm.native(),
                                  gather.collective()));
  gather.wait_all();
  const std::span<const std::int64_t> gathered(all);
  Disagreement d;
  d.reference = gathered.first(n);
  for (int r = 1; r < comm.size(); ++r) {
    const auto theirs = gathered.subspan(static_cast<std::size_t>(r) * n, n);
    if (!std::equal(theirs.begin(), theirs.end(), d.reference.begin())) d.ranks.push_back(r);
  }
  d.rank = d.ranks.front();
  d.theirs = gathered.subspan(static_cast<std::size_t>(d.rank) * n, n);
  throw_error(kind, d.rank, describe(d), /*collective=*/true);
}

}  // namespace ringdp
