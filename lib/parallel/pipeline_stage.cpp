// One pipeline stage's step: the 1F1B schedule over the micro-batches, with every receive
// posted up front and non-blocking sends.

#include "ringdp/parallel/pipeline_stage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

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

// Per micro-batch k, requests_[4k + i] for i in:
constexpr std::size_t kRecvActivation = 0;  // from stage s - 1
constexpr std::size_t kSendActivation = 1;  // to stage s + 1
constexpr std::size_t kRecvGradient = 2;    // from stage s + 1
constexpr std::size_t kSendGradient = 3;    // to stage s - 1
// Tags: activations and gradients travel in opposite directions, but distinct tags keep
// each (source, tag) pair to one message per step, so matching never depends on order.
int activation_tag(int k) { return 2 * k; }
int gradient_tag(int k) { return 2 * k + 1; }

}  // namespace

// The step's requests while it runs. If the step unwinds on an exception, nothing may be
// left half-tracked: receives are cancelled and every request is released (freed, not
// waited for, since the peer may be gone), so no later MPI call completes into a buffer
// the stage has moved on from; the stage is marked broken and refuses further steps.
template <class T>
struct PipelineStage<T>::Transfers {
  explicit Transfers(PipelineStage& stage) : stage_(stage) {}
  ~Transfers() {
    if (done_) return;
    stage_.broken_ = true;
    for (std::size_t i = 0; i < stage_.requests_.size(); ++i) {
      MPI_Request& r = stage_.requests_[i];
      if (r == MPI_REQUEST_NULL) continue;
      // No checks: this runs while an exception unwinds; a failure here changes nothing.
      if (i % 2 == 0) MPI_Cancel(&r);
      MPI_Request_free(&r);
    }
  }
  Transfers(const Transfers&) = delete;
  Transfers& operator=(const Transfers&) = delete;
  void finished() noexcept { done_ = true; }

 private:
  PipelineStage& stage_;
  bool done_ = false;
};

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
  requests_.assign(4 * m, MPI_REQUEST_NULL);
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
void PipelineStage<T>::post_receives(bool gradients) {
  const MPI_Datatype type = mpi_datatype<T>();
  for (int k = 0; k < running_; ++k) {
    const auto n = static_cast<Eigen::Index>(split_evenly(batch_, running_, k).size);
    const std::size_t at = 4 * static_cast<std::size_t>(k);
    if (!first()) {
      nn::Matrix<T>& in = inputs_[static_cast<std::size_t>(k)];
      in.resize(static_cast<Eigen::Index>(model_.input_size()), n);
      RINGDP_MPI_CHECK(MPI_Irecv(in.data(), checked_mpi_count(static_cast<std::size_t>(in.size())),
                                 type, stage() - 1, activation_tag(k), comm_.native(),
                                 &requests_[at + kRecvActivation]));
    }
    if (gradients && !last()) {
      nn::Matrix<T>& grad = output_grads_[static_cast<std::size_t>(k)];
      grad.resize(static_cast<Eigen::Index>(model_.output_size()), n);
      RINGDP_MPI_CHECK(
          MPI_Irecv(grad.data(), checked_mpi_count(static_cast<std::size_t>(grad.size())), type,
                    stage() + 1, gradient_tag(k), comm_.native(), &requests_[at + kRecvGradient]));
    }
  }
}

template <class T>
void PipelineStage<T>::wait_for(MPI_Request& request) {
  const auto t0 = Clock::now();
  detail::wait(comm_, request);
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
  if (broken_) {
    throw Error("PipelineStage: an earlier step of this stage failed; it cannot go on");
  }
  if (first() && (static_cast<std::size_t>(x.rows()) != model_.input_size() ||
                  static_cast<std::size_t>(x.cols()) != batch)) {
    throw InvalidArgument(fmt::format("PipelineStage: input is {} x {}, expected {} x {}", x.rows(),
                                      x.cols(), model_.input_size(), batch));
  }
  detail::CollectiveScope scope(comm_, name);
  Transfers transfers(*this);
  const auto start = Clock::now();
  times_ = {};
  events_.clear();
  backward_count_ = 0;
  batch_ = batch;
  running_ = micro_batches;
  const bool train = actions.size() > static_cast<std::size_t>(micro_batches);
  post_receives(train);
  nn::LossResult total;
  for (const PipelineAction& a : actions) {
    const auto t0 = Clock::now();
    const double waited = times_.wait;
    if (a.pass == Pass::Forward) {
      forward(x, a.micro_batch, loss, total);
    } else {
      backward(a.micro_batch);
    }
    const auto t1 = Clock::now();
    times_.compute += seconds(t0, t1) - (times_.wait - waited);
    events_.push_back({a.pass, a.micro_batch, seconds(start, t0), seconds(start, t1)});
    // Drive MPI's progress for the transfers in flight (Open MPI moves data only inside
    // MPI calls): a send posted here can then be on its way while the next pass computes.
    int flag = 0;
    RINGDP_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag,
                                 MPI_STATUSES_IGNORE));
  }
  const auto t_sends = Clock::now();
  detail::wait_all(comm_, requests_);
  times_.wait += seconds(t_sends, Clock::now());
  transfers.finished();
  total.mean_loss = total.count > 0 ? total.loss_sum / static_cast<double>(total.count) : 0.0;
  times_.total = seconds(start, Clock::now());
  return total;
}

template <class T>
void PipelineStage<T>::forward(const nn::ConstMatrixRef<T>& x, int k, const MicroBatchLoss<T>& loss,
                               nn::LossResult& total) {
  const auto at = static_cast<std::size_t>(k);
  const Slice cols = split_evenly(batch_, running_, k);
  if (!first()) wait_for(requests_[4 * at + kRecvActivation]);
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
  RINGDP_MPI_CHECK(MPI_Isend(out.data(), checked_mpi_count(static_cast<std::size_t>(out.size())),
                             mpi_datatype<T>(), stage() + 1, activation_tag(k), comm_.native(),
                             &requests_[4 * at + kSendActivation]));
}

template <class T>
void PipelineStage<T>::backward(int k) {
  const auto at = static_cast<std::size_t>(k);
  if (!last()) wait_for(requests_[4 * at + kRecvGradient]);
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
  RINGDP_MPI_CHECK(MPI_Isend(dinput->data(),
                             checked_mpi_count(static_cast<std::size_t>(dinput->size())),
                             mpi_datatype<T>(), stage() - 1, gradient_tag(k), comm_.native(),
                             &requests_[4 * at + kSendGradient]));
}

template class PipelineStage<float>;
template class PipelineStage<double>;

}  // namespace ringdp::parallel
