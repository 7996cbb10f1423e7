// One pipeline stage's step: the 1F1B schedule over the micro-batches, with every receive
// posted up front and non-blocking sends.

#include "ringdp/parallel/pipeline_stage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/mpi_types.hpp"
#include "ringdp/error.hpp"

namespace ringdp::parallel {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One tag for every message of the stage's communicator: activations go from stage s to
// s + 1 and gradients from s + 1 to s, each stream in micro-batch order, and the receives
// of each are posted in that order, so MPI's non-overtaking rule matches receive k of a
// stream with its send k.
constexpr int kPipelineTag = 0x5050;  // "PP"

// Drives MPI's progress engine for the transfers in flight (Open MPI moves data only inside
// MPI calls; a rendezvous send, above the eager limit, waits for the sender's next call):
// between passes, so that a send posted after one pass is on its way during the next.
void progress(const Communicator& comm) {
  int flag = 0;
  RINGDP_MPI_CHECK(
      MPI_Iprobe(MPI_ANY_SOURCE, kPipelineTag, comm.native(), &flag, MPI_STATUS_IGNORE));
}

}  // namespace

template <class T>
PipelineStage<T>::PipelineStage(const Communicator& pipeline, nn::Sequential<T>& model,
                                int micro_batches)
    : comm_(pipeline.duplicate()), model_(model), micro_batches_(micro_batches) {
  comm_.set_check_mode(pipeline.check_mode());
  const std::array<std::int64_t, 1> mine = {micro_batches};
  agree_equal(
      comm_, mine,
      [](const Disagreement& d) {
        return fmt::format("PipelineStage: stage {} runs {} micro-batches, stage 0 {}", d.rank,
                           d.theirs[0], d.reference[0]);
      },
      ErrorKind::InvalidArgument);
  if (micro_batches < 1) {
    throw InvalidArgument(
        -1, fmt::format("PipelineStage: {} micro-batches (at least 1)", micro_batches), true);
  }
  // Each stage must take what the stage before gives: one gather of the widths, the same
  // verdict on every rank.
  const std::array<std::int64_t, 2> widths = {static_cast<std::int64_t>(model.input_size()),
                                              static_cast<std::int64_t>(model.output_size())};
  std::vector<std::int64_t> all(2 * static_cast<std::size_t>(comm_.size()));
  allgather<std::int64_t>(comm_, widths, all);
  for (std::size_t s = 1; s < static_cast<std::size_t>(comm_.size()); ++s) {
    if (all[2 * s] != all[2 * s - 1]) {
      throw InvalidArgument(
          -1,
          fmt::format("PipelineStage: stage {} takes {} inputs but stage {} gives {} outputs", s,
                      all[2 * s], s - 1, all[2 * s - 1]),
          true);
    }
  }
  schedule_ = one_forward_one_backward(comm_.size(), comm_.rank(), micro_batches);
  const auto m = static_cast<std::size_t>(micro_batches);
  caches_.resize(m);
  inputs_.resize(m);
  output_grads_.resize(m);
  input_grads_.resize(m);
  activation_recv_.resize(m);
  gradient_recv_.resize(m);
  if (micro_batches > 1) accumulated_.resize(model.parameter_count());
}

template <class T>
PipelineStage<T>::~PipelineStage() = default;

template <class T>
Slice PipelineStage<T>::micro_batch(std::size_t batch, int k) const {
  return split_evenly(batch, micro_batches_, k);
}

template <class T>
void PipelineStage<T>::set_stall_step(std::int64_t step) noexcept {
  comm_.set_stall_context({.step = step});
}

template <class T>
void PipelineStage<T>::post_receives(detail::Requests& requests, bool gradients) {
  for (int k = 0; k < running_; ++k) {
    const auto at = static_cast<std::size_t>(k);
    const auto n = static_cast<Eigen::Index>(split_evenly(batch_, running_, k).size);
    if (!first()) {
      nn::Matrix<T>& in = inputs_[at];
      in.resize(static_cast<Eigen::Index>(model_.input_size()), n);
      activation_recv_[at] = requests.irecv(
          in.data(), checked_mpi_count(static_cast<std::size_t>(in.size())), stage() - 1);
    }
    if (gradients && !last()) {
      nn::Matrix<T>& grad = output_grads_[at];
      grad.resize(static_cast<Eigen::Index>(model_.output_size()), n);
      gradient_recv_[at] = requests.irecv(
          grad.data(), checked_mpi_count(static_cast<std::size_t>(grad.size())), stage() + 1);
    }
  }
}

template <class T>
void PipelineStage<T>::wait_for(detail::Requests& requests, std::size_t index) {
  const auto t0 = Clock::now();
  requests.wait_recv(index);
  times_.wait += seconds(t0, Clock::now());
}

template <class T>
nn::LossResult PipelineStage<T>::step(const nn::ConstMatrixRef<T>& x, std::size_t batch,
                                      const MicroBatchLoss<T>& loss) {
  if (batch < static_cast<std::size_t>(micro_batches_)) {
    throw InvalidArgument(
        fmt::format("PipelineStage::step: a batch of {} cannot make {} "
                    "micro-batches (each needs a sample)",
                    batch, micro_batches_));
  }
  const nn::LossResult total = run(x, batch, loss, schedule_, micro_batches_, "pipeline step");
  if (micro_batches_ > 1) {
    std::copy(accumulated_.begin(), accumulated_.end(), model_.gradients().begin());
  }
  return total;
}

template <class T>
nn::LossResult PipelineStage<T>::evaluate(const nn::ConstMatrixRef<T>& x, std::size_t batch,
                                          const MicroBatchLoss<T>& loss) {
  // Forwards only, in micro-batch order: nothing waits for a backward, so the pipeline
  // fills and drains once. A short last batch makes fewer micro-batches.
  const int m = static_cast<int>(std::min<std::size_t>(batch, micro_batches_));
  std::vector<PipelineAction> forwards;
  for (int k = 0; k < m; ++k) forwards.push_back({Pass::Forward, k});
  return run(x, batch, loss, forwards, m, "pipeline evaluation");
}

template <class T>
nn::LossResult PipelineStage<T>::run(const nn::ConstMatrixRef<T>& x, std::size_t batch,
                                     const MicroBatchLoss<T>& loss,
                                     const std::vector<PipelineAction>& actions, int micro_batches,
                                     const char* name) {
  if (first() && (static_cast<std::size_t>(x.rows()) != model_.input_size() ||
                  static_cast<std::size_t>(x.cols()) != batch)) {
    throw InvalidArgument(fmt::format("PipelineStage: input is {} x {}, expected {} x {}", x.rows(),
                                      x.cols(), model_.input_size(), batch));
  }
  detail::CollectiveScope scope(comm_, name);
  const auto start = Clock::now();
  times_ = {};
  events_.clear();
  backward_count_ = 0;
  batch_ = batch;
  running_ = micro_batches;
  // Every receive of the step is posted here, into the stage's own buffers; if the step
  // unwinds, `requests` settles them with the other stages (comm/requests.hpp).
  detail::Requests requests(comm_, kPipelineTag, mpi_datatype<T>());
  const bool train = actions.size() > static_cast<std::size_t>(micro_batches);
  post_receives(requests, train);
  nn::LossResult total;
  for (const PipelineAction& a : actions) {
    const auto t0 = Clock::now();
    const double waited = times_.wait;
    if (a.pass == Pass::Forward) {
      forward(requests, x, a.micro_batch, loss, total);
    } else {
      backward(requests, a.micro_batch);
    }
    const auto t1 = Clock::now();
    times_.compute += seconds(t0, t1) - (times_.wait - waited);
    events_.push_back({a.pass, a.micro_batch, seconds(start, t0), seconds(start, t1)});
    progress(comm_);
  }
  const auto t_sends = Clock::now();
  requests.wait_all();
  times_.wait += seconds(t_sends, Clock::now());
  total.mean_loss = total.count > 0 ? total.loss_sum / static_cast<double>(total.count) : 0.0;
  times_.total = seconds(start, Clock::now());
  return total;
}

template <class T>
void PipelineStage<T>::forward(detail::Requests& requests, const nn::ConstMatrixRef<T>& x, int k,
                               const MicroBatchLoss<T>& loss, nn::LossResult& total) {
  const auto at = static_cast<std::size_t>(k);
  const Slice cols = split_evenly(batch_, running_, k);
  if (!first()) wait_for(requests, activation_recv_[at]);
  const nn::Matrix<T>& out =
      first() ? model_.forward(x.middleCols(static_cast<Eigen::Index>(cols.offset),
                                            static_cast<Eigen::Index>(cols.size)),
                               caches_[at])
              : model_.forward(inputs_[at], caches_[at]);
  if (last()) {
    const nn::LossResult r = loss(out, cols, output_grads_[at]);
    total.loss_sum += r.loss_sum;
    total.correct += r.correct;
    total.count += r.count;
    return;
  }
  // The output stays in the micro-batch's cache, untouched until its backward (which only
  // reads it), so it is sent from there without a copy.
  requests.isend(out.data(), checked_mpi_count(static_cast<std::size_t>(out.size())), stage() + 1);
}

template <class T>
void PipelineStage<T>::backward(detail::Requests& requests, int k) {
  const auto at = static_cast<std::size_t>(k);
  if (!last()) wait_for(requests, gradient_recv_[at]);
  nn::Matrix<T>* dinput = first() ? nullptr : &input_grads_[at];
  model_.backward(output_grads_[at], caches_[at], {}, dinput);
  if (micro_batches_ > 1) {
    // backward() overwrites the gradient arena: the step's gradient is the sum over its
    // micro-batches, kept aside (the first one copied, the others added).
    const std::span<const T> g = model_.gradients();
    if (backward_count_ == 0) {
      std::copy(g.begin(), g.end(), accumulated_.begin());
    } else {
      for (std::size_t i = 0; i < g.size(); ++i) accumulated_[i] += g[i];
    }
  }
  ++backward_count_;
  if (dinput == nullptr) return;
  requests.isend(dinput->data(), checked_mpi_count(static_cast<std::size_t>(dinput->size())),
                 stage() - 1);
}

template class PipelineStage<float>;
template class PipelineStage<double>;

}  // namespace ringdp::parallel
