// The stall inspector at work during one long wait.
//
// The protocol, over the communicator's report channel (a duplicate made with it, shared
// with the duplicates made from it by Communicator::duplicate()):
//  - A rank other than 0 that has waited report_after seconds sends rank 0 one report per
//    collective (the sequence number says which): its collective, context and wait time.
//  - Every rank in a long wait reads the channel now and then. Rank 0 records each report
//    and answers it at once: the answer tells the reporter that rank 0 is alive and
//    waiting, so rank 0 will speak for everyone.
//  - Rank 0 prints its line `grace` seconds after report_seconds, so that the reports of
//    ranks that began waiting a little after it are in, then every report_seconds. The
//    ranks with no report for this call are the ones not arrived, except those that
//    report a later call of it, or, during this wait, a call of another communicator of
//    the channel (they are named with that call).
//  - A reporter with no answer after `grace` seconds concludes that rank 0 is not waiting
//    in a ringdp collective, and prints one line of its own naming rank 0.
//  - Abort: rank 0 at abort_after; a rank that rank 0 answered kAnsweredAbortDelay later
//    (rank 0's abort, with the fuller message, normally ends the job first); a rank with
//    no answer at abort_after, with its own line.
// Nothing is ever posted that could stay pending: receives are posted only for messages
// already probed, and sends are 80 bytes, which MPI sends eagerly (each is tested to
// completion later). So a stall that resolves by itself leaves no request behind, and the
// thread doing the wait is the only one that touches MPI (MPI_THREAD_SERIALIZED holds).

#include "stall_watch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ringdp/comm/abort.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::detail {
namespace {

using namespace std::chrono_literals;

// After this long a wait is no longer part of a transfer (a 128 KiB ring segment takes well
// under a millisecond) but a rank waiting for another: yield the core at each poll to whoever
// shares it (another rank when oversubscribed, the trainer's compute thread). Shorter waits
// spin as MPI_Wait does, so a transfer never pays for a system call per poll.
constexpr double kYieldAfter = 10e-3;
// Read the channel from this far into a wait, then at most this often: often enough that
// answers arrive in a fraction of the grace period, rarely enough to cost nothing.
constexpr auto kDrainAfter = 10ms;
constexpr auto kDrainEvery = 1ms;
// The grace period is a quarter of the report time, within these bounds: it covers the
// skew between ranks' arrivals and the delivery of reports and answers.
constexpr double kMinGrace = 0.25;
constexpr double kMaxGrace = 5.0;
constexpr double kAnsweredAbortDelay = 5.0;
// Lists of ranks are cut after this many ranges, and of other calls after this many.
constexpr std::size_t kMaxRanges = 16;
constexpr std::size_t kMaxOthers = 8;

// "1,3-5,9"
std::string rank_ranges(const std::vector<int>& ranks) {
  std::string text;
  std::size_t ranges = 0;
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (ranges == kMaxRanges) {
      text += fmt::format(",... ({} ranks in all)", ranks.size());
      break;
    }
    if (!text.empty()) text += ',';
    text += j == i ? fmt::format("{}", ranks[i]) : fmt::format("{}-{}", ranks[i], ranks[j]);
    ++ranges;
    i = j + 1;
  }
  return text;
}

std::string context_text(std::int64_t step, std::int64_t first_bucket, std::int64_t buckets) {
  std::string text;
  if (step >= 0) text = fmt::format("step {}", step);
  if (first_bucket >= 0 && buckets > 0) {
    if (!text.empty()) text += ", ";
    text += buckets == 1 ? fmt::format("bucket {}", first_bucket)
                         : fmt::format("buckets {}-{}", first_bucket, first_bucket + buckets - 1);
  }
  return text.empty() ? text : " (" + text + ")";
}

std::string call_text(const char* collective, std::uint64_t sequence) {
  return fmt::format("{} #{}", collective != nullptr ? collective : "collective", sequence);
}

std::string report_text(const StallMessage& m) {
  char name[sizeof m.collective + 1] = {};
  std::memcpy(name, m.collective, sizeof m.collective);
  return call_text(name, static_cast<std::uint64_t>(m.sequence)) +
         context_text(m.step, m.first_bucket, m.buckets);
}

void print_line(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace

StallWatch::StallWatch(const Communicator& comm)
    : comm_(comm), state_(StallAccess::state(comm)), start_(StallClock::now()) {
  next_drain_ = start_ + kDrainAfter;
  if (state_ == nullptr) return;
  channel_ = state_->channel.get();
  if (channel_->size < 2) return;  // nobody to wait for or report to
  settings_ = stall_settings();
  const double report = settings_.report_seconds;
  const double abort = settings_.abort_seconds;
  // Reports go out at the first limit that is on, so that an abort limit below the
  // report limit still finds rank 0 informed.
  report_after_ = report > 0.0 ? (abort > 0.0 ? std::min(report, abort) : report) : abort;
  grace_ = std::clamp(report_after_ / 4.0, kMinGrace, kMaxGrace);
  // Never abort before the reports could have reached rank 0.
  abort_after_ = abort > 0.0 ? std::max(abort, report_after_ + grace_) : 0.0;
  next_line_ = report + grace_;
}

StallWatch::~StallWatch() {
  if (state_ == nullptr) return;
  if (printed_) {
    const double waited = Seconds(StallClock::now() - start_).count();
    print_line(fmt::format("ringdp: stall: rank {}: {} ended after {:.1f} s", channel_->rank,
                           where(), waited));
  }
  try {
    channel_->settle_sends();
  } catch (...) {
    // An MPI error here is reported by the next call that meets it; a destructor only logs.
  }
}

std::string StallWatch::where() const {
  const StallContext c = state_->context();
  return call_text(state_->collective, state_->sequence) +
         context_text(c.step, c.first_bucket, c.buckets);
}

void StallWatch::send(int dest, int tag, const StallMessage& message) {
  // Room first, so that a send, once posted, is always recorded (push_back cannot throw
  // after MPI_Isend).
  auto& sends = channel_->sends;
  if (sends.size() == sends.capacity()) sends.reserve(2 * sends.size() + 4);
  auto pending = std::make_unique<PendingSend>();
  pending->message = message;
  RINGDP_MPI_CHECK(MPI_Isend(&pending->message, sizeof(StallMessage), MPI_BYTE, dest, tag,
                             channel_->side, &pending->request));
  sends.push_back(std::move(pending));
}

void StallWatch::report(double waited) {
  const StallContext c = state_->context();
  StallMessage m;
  m.communicator = state_->id;
  m.sequence = static_cast<std::int64_t>(state_->sequence);
  m.step = c.step;
  m.first_bucket = c.first_bucket;
  m.buckets = c.buckets;
  m.waited = waited;
  if (state_->collective != nullptr) {
    std::strncpy(m.collective, state_->collective, sizeof m.collective - 1);
  }
  send(0, kReportTag, m);
  state_->reported = state_->sequence;
}

void StallWatch::drain() {
  StallChannel& ch = *channel_;
  for (;;) {
    int flag = 0;
    MPI_Status status;
    RINGDP_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, ch.side, &flag, &status));
    if (flag == 0) break;
    StallMessage m;
    RINGDP_MPI_CHECK(MPI_Recv(&m, sizeof m, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, ch.side,
                              MPI_STATUS_IGNORE));
    const int source = status.MPI_SOURCE;
    if (status.MPI_TAG == kReportTag && ch.rank == 0 && source > 0 && source < ch.size) {
      // Allocated at rank 0's first stall, not with every channel: a large job's
      // communicators would each carry a per-rank table they almost never use.
      if (ch.records.empty()) ch.records.resize(static_cast<std::size_t>(ch.size));
      ch.records[static_cast<std::size_t>(source)] = {m, StallClock::now(), true};
      StallMessage answer;
      answer.communicator = m.communicator;
      answer.sequence = m.sequence;
      send(source, kAnswerTag, answer);
    } else if (status.MPI_TAG == kAnswerTag && m.communicator >= 0 && m.communicator < ch.next_id) {
      const auto id = static_cast<std::size_t>(m.communicator);
      if (ch.answered.size() <= id) ch.answered.resize(id + 1, 0);
      // Answers from one rank arrive in order (MPI does not overtake), so the largest is
      // the latest.
      ch.answered[id] = std::max(ch.answered[id], static_cast<std::uint64_t>(m.sequence));
    }
  }
  ch.settle_sends();
}

std::string StallWatch::rank0_line(double waited) const {
  const auto sequence = static_cast<std::int64_t>(state_->sequence);
  std::vector<int> missing;
  std::vector<int> same;
  std::vector<std::string> others;
  const StallChannel& ch = *channel_;
  for (int r = 1; r < ch.size; ++r) {
    const StallRecord* record =
        ch.records.empty() ? nullptr : &ch.records[static_cast<std::size_t>(r)];
    // A report from before this wait began may be long out of date: it counts only when
    // it is about this very call.
    const bool fresh = record != nullptr && record->valid && record->received >= start_;
    const bool here =
        record != nullptr && record->valid && record->report.communicator == state_->id;
    if (here && record->report.sequence == sequence) {
      same.push_back(r);
      continue;
    }
    const auto other = [&](const char* where_from) {
      if (others.size() < kMaxOthers) {
        others.push_back(
            fmt::format("rank {} waiting in {}{}", r, report_text(record->report), where_from));
      }
    };
    if (here && record->report.sequence > sequence) {
      // Through this call already (a broadcast's root can finish before the others).
      other("");
    } else if (here && fresh) {
      missing.push_back(r);  // still in an earlier call of this communicator
      other("");
    } else if (fresh) {
      // E.g. in the gradient reducer's reduction while this is the trainer's.
      other(" of another communicator");
    } else {
      missing.push_back(r);  // silent
    }
  }
  std::string line = fmt::format("rank 0 waited {:.1f} s in {}; ranks not arrived: {}", waited,
                                 where(), missing.empty() ? "none" : rank_ranges(missing));
  if (same.empty()) {
    line += " (no rank reported waiting in the same call)";
  } else {
    line += fmt::format(" ({} {} waiting in the same call)", same.size() == 1 ? "rank" : "ranks",
                        rank_ranges(same));
  }
  for (const std::string& o : others) line += "; " + o;
  return line;
}

std::string StallWatch::silent_rank0_line(double waited) const {
  return fmt::format(
      "rank {} waited {:.1f} s in {}; rank 0 has not answered its stall report, so rank 0 has "
      "probably not arrived (it may be the stalled rank)",
      channel_->rank, waited, where());
}

void StallWatch::tick() {
  const StallClock::time_point now = StallClock::now();
  const double waited = Seconds(now - start_).count();
  if (waited >= kYieldAfter) yielding_ = true;
  if (report_after_ <= 0.0) return;  // inspector off (or a 1-rank communicator)
  if (now >= next_drain_) {
    drain();
    next_drain_ = now + kDrainEvery;
  }
  const std::uint64_t sequence = state_->sequence;
  const bool reports_on = settings_.report_seconds > 0.0;
  if (channel_->rank != 0) {
    if (waited >= report_after_ && state_->reported != sequence) report(waited);
    const bool answered = channel_->answered_for(state_->id) == sequence;
    if (reports_on && !answered && state_->reported == sequence && state_->noticed != sequence &&
        waited >= report_after_ + grace_) {
      print_line("ringdp: stall: " + silent_rank0_line(waited));
      state_->noticed = sequence;
      printed_ = true;
    }
    if (abort_after_ > 0.0 && waited >= abort_after_ + (answered ? kAnsweredAbortDelay : 0.0)) {
      abort_job(comm_.native(),
                fmt::format("stall: {}; RINGDP_STALL_ABORT_SECONDS={} reached",
                            answered ? fmt::format("rank {} waited {:.1f} s in {}; rank 0 "
                                                   "is waiting too",
                                                   channel_->rank, waited, where())
                                     : silent_rank0_line(waited),
                            settings_.abort_seconds));
    }
    return;
  }
  if (reports_on && waited >= next_line_) {
    print_line("ringdp: stall: " + rank0_line(waited));
    printed_ = true;
    next_line_ += settings_.report_seconds;
  }
  if (abort_after_ > 0.0 && waited >= abort_after_) {
    abort_job(comm_.native(), fmt::format("stall: {}; RINGDP_STALL_ABORT_SECONDS={} reached",
                                          rank0_line(waited), settings_.abort_seconds));
  }
}

}  // namespace ringdp::detail
