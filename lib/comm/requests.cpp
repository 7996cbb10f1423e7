// The requests of one collective call, and how they are settled when the call unwinds.
//
// What must not happen when a collective throws with requests in flight:
//  - a receive still posted: MPI writes into the communicator's scratch or the caller's
//    buffer later, after they were reused or freed;
//  - a send still posted: MPI reads the caller's buffer later;
//  - a message of the call left unmatched on the communicator: the next collective with the
//    same tag receives it instead of its own data, and silently reduces garbage;
//  - a hang: the destructor waiting for a peer that will never answer.
//
// What Open MPI 4.1 does (pml ob1, over the vader and tcp btls alike; read in its source,
// pml_ob1_sendreq.c and pml_ob1_recvreq.c, and checked by experiment on the development
// machine at 1 KiB and 1 MiB messages):
//  - MPI_Cancel of a send does nothing ("we dont cancel send requests by now"): it returns
//    MPI_SUCCESS, the message is delivered anyway, and MPI_Test_cancelled says false. An
//    eager send (up to 4 KiB over vader, 64 KiB over tcp) completes at once without any
//    receive; a rendezvous send completes only once the receiver has matched it and the
//    sender's progress engine has pushed the data.
//  - MPI_Cancel of a receive not yet matched removes it from the posted queue: it completes
//    at once, cancelled. A message that arrives later is unexpected, and stays on the
//    communicator until a receive (of any later call) matches it. A receive already
//    matched cannot be cancelled: it completes normally once its data has arrived, which
//    for a rendezvous message needs the sender to drive its progress engine.
//  - MPI_Test of a request that completed with an error returns the error and leaves the
//    request allocated (ompi_request_default_test): it must be freed.
//  - Non-blocking collectives (MPI_Ibcast, MPI_Iallreduce, ...) cannot be cancelled; they
//    complete when every rank has posted them.
// So cancelling alone cannot clean up: a cancelled receive leaves its message to the next
// collective, a peer may have sent messages this rank never posted receives for, and a
// rendezvous send to a peer that stopped receiving never completes.
//
// The protocol, run by the destructor of a call that unwinds:
//  1. Cancel every pending receive. Each then completes (cancelled, or matched and
//     filled), which tells how many messages of each peer this call has received.
//  2. Exchange with every other rank, on the reserved tag kSettleTag: (the call's number
//     on the communicator, how many messages this call sent you). 16 bytes: eager, so these
//     sends complete at once whatever the peer does.
//  3. Poll, driving progress, until: every cancelled receive, send and non-blocking
//     collective of the call has completed; every rank's handshake has arrived and names
//     the same call; and every message a peer says it sent here has been received, the
//     missing ones through MPI_Improbe/MPI_Imrecv into a discard buffer. Each rank drains
//     what was sent to it, so each rank's rendezvous sends complete too, and since every
//     rank polls meanwhile, data of matched receives flows. Afterwards nothing of the
//     call is in flight anywhere and the communicator holds no stray message.
//  4. If that does not happen within the settle time (kSettleSeconds, or the stall abort
//     time when that is shorter), or a peer unwinds another call, the peers are not
//     unwinding this call with us (they wait in it, or finished it). Returning would leave
//     MPI free to write into buffers that are about to be freed, and waiting longer would
//     hang: the rank aborts the job (abort_job), naming itself, the call and what was left.
//     Likewise for an error of MPI during the settling.
// The common failures end one way or the other: an error every rank meets in the same call
// (a test hook, an allocation every rank makes) settles and every rank throws; an error on
// one rank (its MPI failed) ends the job with a message instead of a silent hang, since
// its peers would wait for it for ever.

#include "comm/requests.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "comm/wait.hpp"
#include "ringdp/comm/abort.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/stall.hpp"
#include "ringdp/error.hpp"
#include "stall_state.hpp"

namespace ringdp::detail {
namespace {

// How long a rank waits for its peers to settle an interrupted call before it aborts the
// job. Peers unwinding from the same error reach their settling within the time the call
// takes (milliseconds); far longer means they never will.
constexpr double kSettleSeconds = 10.0;
constexpr int kSpinPolls = 16;

double settle_seconds() {
  const double abort = stall_settings().abort_seconds;
  return abort > 0.0 ? std::min(kSettleSeconds, abort) : kSettleSeconds;
}

// Tests one request; a request that completed with an error is freed (Open MPI leaves it
// allocated). Returns true when it is complete; `cancelled` tells whether it was cancelled.
bool test_one(MPI_Request& request, bool* cancelled, std::string& first_error) {
  if (request == MPI_REQUEST_NULL) return true;
  MPI_Status status;
  int done = 0;
  if (const int rc = MPI_Test(&request, &done, &status); rc != MPI_SUCCESS) {
    if (first_error.empty()) {
      char text[MPI_MAX_ERROR_STRING] = {};
      int length = 0;
      MPI_Error_string(rc, text, &length);
      first_error = fmt::format("a request completed with MPI error {} ({})", rc, text);
    }
    if (request != MPI_REQUEST_NULL) MPI_Request_free(&request);
    return true;
  }
  if (done != 0 && cancelled != nullptr) {
    int flag = 0;
    MPI_Test_cancelled(&status, &flag);
    *cancelled = flag != 0;
  }
  return done != 0;
}

}  // namespace

// One settling of a Requests object (see the protocol above). Throws Error when it cannot.
class Settlement {
 public:
  explicit Settlement(Requests& r)
      : r_(r),
        n_(r.comm_.size()),
        sequence_(static_cast<std::int64_t>(r.comm_.collective_count())),
        exchange_(r.tag_ >= 0 && n_ > 1),
        sent_(static_cast<std::size_t>(n_), 0),
        received_(static_cast<std::size_t>(n_), 0),
        announced_(static_cast<std::size_t>(n_), -1) {
    for (std::size_t i = 0; i < r.sends_.size(); ++i) ++sent_[peer(r.send_peer_[i])];
    for (std::size_t i = 0; i < r.recvs_.size(); ++i) ++received_[peer(r.recv_peer_[i])];
  }

  void run() {
    for (std::size_t i = r_.recvs_done_; i < r_.recvs_.size(); ++i) {
      if (r_.recvs_[i] != MPI_REQUEST_NULL) MPI_Cancel(&r_.recvs_[i]);
    }
    if (exchange_) post_handshake();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(settle_seconds());
    for (int i = 0;; ++i) {
      if (poll()) return;
      if (std::chrono::steady_clock::now() > deadline) {
        throw Error(fmt::format("the peers did not settle it within {} s ({} still in flight)",
                                settle_seconds(), left_text()));
      }
      if (i >= kSpinPolls) std::this_thread::yield();
    }
  }

  // An MPI error met while settling (the requests were completed all the same).
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  static std::size_t peer(int rank) { return static_cast<std::size_t>(rank); }

  void post_handshake() {
    const MPI_Comm comm = r_.comm_.native();
    const int me = r_.comm_.rank();
    out_.resize(peer(n_));
    in_.resize(peer(n_));
    for (int q = 0; q < n_; ++q) {
      if (q == me) continue;
      out_[peer(q)] = {sequence_, sent_[peer(q)]};
      RINGDP_MPI_CHECK(MPI_Irecv(in_[peer(q)].data(), 2, MPI_INT64_T, q, Requests::kSettleTag, comm,
                                 &handshake_recvs_.emplace_back(MPI_REQUEST_NULL)));
      RINGDP_MPI_CHECK(MPI_Isend(out_[peer(q)].data(), 2, MPI_INT64_T, q, Requests::kSettleTag,
                                 comm, &handshake_sends_.emplace_back(MPI_REQUEST_NULL)));
      handshake_peer_.push_back(q);
    }
  }

  // One pass over everything in flight; true when the call is settled.
  bool poll() {
    bool settled = true;
    for (std::size_t i = r_.recvs_done_; i < r_.recvs_.size(); ++i) {
      bool cancelled = false;
      if (r_.recvs_[i] == MPI_REQUEST_NULL) continue;
      if (!test_one(r_.recvs_[i], &cancelled, error_)) {
        settled = false;
      } else if (cancelled) {
        --received_[peer(r_.recv_peer_[i])];
      }
    }
    const bool receives_done = settled;
    settled =
        test_all(std::span(r_.sends_.data(), r_.sends_.size()).subspan(r_.sends_done_)) && settled;
    settled = test_all(std::span(r_.collectives_.data(), r_.collectives_.size())
                           .subspan(r_.collectives_done_)) &&
              settled;
    settled = test_all(handshake_sends_) && settled;
    // Drain once every peer's count is in and this rank's own receives are over (until
    // then a message may still be on its way to one of them), without waiting for this
    // rank's sends: they complete as the peers drain them in turn.
    const bool counts_known = take_handshakes();
    if (!receives_done || !counts_known) return false;
    return drain() && settled;
  }

  bool test_all(std::span<MPI_Request> requests) {
    bool all = true;
    for (MPI_Request& request : requests) all = test_one(request, nullptr, error_) && all;
    return all;
  }

  bool take_handshakes() {
    bool all = true;
    for (std::size_t i = 0; i < handshake_recvs_.size(); ++i) {
      const int q = handshake_peer_[i];
      if (announced_[peer(q)] >= 0) continue;
      if (!test_one(handshake_recvs_[i], nullptr, error_)) {
        all = false;
        continue;
      }
      const auto [their_sequence, count] = in_[peer(q)];
      if (their_sequence != sequence_) {
        throw Error(
            fmt::format("rank {} unwound collective #{} of this communicator, this "
                        "rank #{}",
                        q, their_sequence, sequence_));
      }
      announced_[peer(q)] = count;
    }
    return all;
  }

  // Receives what peers sent and this call did not receive. True when nothing is missing
  // and every drained message is in.
  bool drain() {
    bool all = test_all(drains_);
    for (int q = 0; q < n_ && exchange_; ++q) {
      const std::int64_t missing = announced_[peer(q)] - received_[peer(q)];
      if (q == r_.comm_.rank() || missing == 0) continue;
      if (missing < 0) {
        throw Error(fmt::format("rank {} says it sent {} messages here, but this rank received {}",
                                q, announced_[peer(q)], received_[peer(q)]));
      }
      all = false;
      int found = 0;
      MPI_Message message = MPI_MESSAGE_NULL;
      MPI_Status status;
      RINGDP_MPI_CHECK(MPI_Improbe(q, r_.tag_, r_.comm_.native(), &found, &message, &status));
      if (found == 0) continue;
      int count = 0;
      int element = 0;
      RINGDP_MPI_CHECK(MPI_Get_count(&status, r_.type_, &count));
      RINGDP_MPI_CHECK(MPI_Type_size(r_.type_, &element));
      auto& buffer = discard_.emplace_back(static_cast<std::size_t>(count) *
                                           static_cast<std::size_t>(element));
      RINGDP_MPI_CHECK(MPI_Imrecv(buffer.data(), count, r_.type_, &message,
                                  &drains_.emplace_back(MPI_REQUEST_NULL)));
      ++received_[peer(q)];
    }
    return all;
  }

  [[nodiscard]] std::string left_text() const {
    auto count = [](auto first, auto last) {
      return std::count_if(first, last, [](MPI_Request q) { return q != MPI_REQUEST_NULL; });
    };
    const auto* recvs = r_.recvs_.data();
    std::string text =
        fmt::format("{} receives, {} sends, {} non-blocking collectives",
                    count(recvs + r_.recvs_done_, recvs + r_.recvs_.size()),
                    count(r_.sends_.data() + r_.sends_done_, r_.sends_.data() + r_.sends_.size()),
                    count(r_.collectives_.data() + r_.collectives_done_,
                          r_.collectives_.data() + r_.collectives_.size()));
    if (!exchange_) return text;
    std::string silent;
    for (std::size_t i = 0; i < handshake_peer_.size(); ++i) {
      if (announced_[peer(handshake_peer_[i])] < 0) {
        silent += fmt::format("{}{}", silent.empty() ? "" : ",", handshake_peer_[i]);
      }
    }
    return text + (silent.empty() ? "" : fmt::format("; no answer from rank(s) {}", silent));
  }

  Requests& r_;
  const int n_;
  const std::int64_t sequence_;
  const bool exchange_;
  std::vector<std::int64_t> sent_;       // per rank: messages this call sent it
  std::vector<std::int64_t> received_;   // per rank: its messages this call received
  std::vector<std::int64_t> announced_;  // per rank: messages it says it sent here (-1: unknown)
  std::vector<std::array<std::int64_t, 2>> out_;
  std::vector<std::array<std::int64_t, 2>> in_;
  std::vector<MPI_Request> handshake_sends_;
  std::vector<MPI_Request> handshake_recvs_;
  std::vector<int> handshake_peer_;
  std::vector<MPI_Request> drains_;
  std::vector<std::vector<std::byte>> discard_;
  std::string error_;
};

Requests::Requests(const Communicator& comm, int tag, MPI_Datatype type) noexcept
    : comm_(comm), tag_(tag), type_(type), uncaught_(std::uncaught_exceptions()) {}

Requests::Requests(const Communicator& comm) noexcept : Requests(comm, -1, MPI_DATATYPE_NULL) {}

Requests::~Requests() {
  const bool unwinding = std::uncaught_exceptions() > uncaught_;
  if ((unwinding && tag_ >= 0) || pending()) settle();
}

namespace {

// Records a request and its peer around `post`, with room made first: once MPI has the
// request, recording it cannot fail (an unrecorded request could not be settled).
template <class Requests, class Peers, class Post>
void record(Requests& requests, Peers& peers, int peer, Post&& post) {
  requests.reserve_one();
  peers.reserve_one();
  MPI_Request request = MPI_REQUEST_NULL;
  post(&request);
  requests.append(request);
  peers.append(peer);
}

}  // namespace

void Requests::isend(const void* data, int count, int dest) {
  record(sends_, send_peer_, dest, [&](MPI_Request* request) {
    RINGDP_MPI_CHECK(MPI_Isend(data, count, type_, dest, tag_, comm_.native(), request));
  });
}

void Requests::send(const void* data, int count, int dest) {
  // Complete on return (its request stays null), but counted for the settling.
  record(sends_, send_peer_, dest, [&](MPI_Request*) {
    RINGDP_MPI_CHECK(MPI_Send(data, count, type_, dest, tag_, comm_.native()));
  });
}

std::size_t Requests::irecv(void* data, int count, int source) {
  record(recvs_, recv_peer_, source, [&](MPI_Request* request) {
    RINGDP_MPI_CHECK(MPI_Irecv(data, count, type_, source, tag_, comm_.native(), request));
  });
  return recvs_.size() - 1;
}

MPI_Request* Requests::collective() {
  collectives_.reserve_one();
  collectives_.append(MPI_REQUEST_NULL);
  return &collectives_[collectives_.size() - 1];
}

void Requests::wait_recv(std::size_t index) {
  wait(comm_, recvs_[index]);
  while (recvs_done_ < recvs_.size() && recvs_[recvs_done_] == MPI_REQUEST_NULL) ++recvs_done_;
}

void Requests::wait_sends(std::size_t end) {
  if (end <= sends_done_) return;
  detail::wait_all(comm_, std::span(sends_.data() + sends_done_, end - sends_done_));
  sends_done_ = end;
}

void Requests::wait_all() {
  wait_sends(sends_.size());
  if (recvs_done_ < recvs_.size()) {
    detail::wait_all(comm_, std::span(recvs_.data() + recvs_done_, recvs_.size() - recvs_done_));
    recvs_done_ = recvs_.size();
  }
  if (collectives_done_ < collectives_.size()) {
    detail::wait_all(comm_, std::span(collectives_.data() + collectives_done_,
                                      collectives_.size() - collectives_done_));
    collectives_done_ = collectives_.size();
  }
}

bool Requests::pending() const noexcept {
  auto any = [](const auto& list, std::size_t from) {
    for (std::size_t i = from; i < list.size(); ++i) {
      if (list[i] != MPI_REQUEST_NULL) return true;
    }
    return false;
  };
  return any(sends_, sends_done_) || any(recvs_, recvs_done_) ||
         any(collectives_, collectives_done_);
}

void Requests::settle() noexcept {
  if (!Environment::initialized() || Environment::finalized()) return;
  const StallState* state = StallAccess::state(comm_);
  const std::string call = fmt::format(
      "{} #{}", state != nullptr && state->collective != nullptr ? state->collective : "collective",
      comm_.collective_count());
  try {
    Settlement settlement(*this);
    settlement.run();
    if (!settlement.error().empty()) {
      // Settled, but MPI reported an error on a request meanwhile: say so, the exception
      // being thrown carries the first cause.
      std::fprintf(stderr, "ringdp: rank %d: %s unwound; while settling its requests: %s\n",
                   world_rank(), call.c_str(), settlement.error().c_str());
    }
  } catch (const Error& e) {
    abort_job(comm_.native(),
              fmt::format("{} unwound with requests in flight, and they could not be settled: {}",
                          call, e.cause()));
  } catch (const std::exception& e) {
    abort_job(comm_.native(),
              fmt::format("{} unwound with requests in flight, and they could not be settled: {}",
                          call, e.what()));
  } catch (...) {
    abort_job(comm_.native(), fmt::format("{}: settling its requests failed", call));
  }
}

}  // namespace ringdp::detail
