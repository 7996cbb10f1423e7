#include "ringdp/comm/communicator.hpp"

#include <cstdio>
#include <new>
#include <utility>

#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "comm/node_state.hpp"
#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "stall_state.hpp"

namespace ringdp {

/// One aligned block that only grows. Freed with the communicator.
struct Communicator::Scratch {
  std::byte* data = nullptr;
  std::size_t capacity = 0;
  ~Scratch() { ::operator delete (data, std::align_val_t{kAlignment}); }
  static constexpr std::size_t kAlignment = 64;
};

void Communicator::ScratchDeleter::operator()(Scratch* scratch) const noexcept { delete scratch; }

std::span<std::byte> Communicator::scratch(std::size_t bytes) const {
  if (!scratch_) scratch_.reset(new Scratch);
  Scratch& s = *scratch_;
  if (bytes > s.capacity) {
    // Grow to the request rounded up to whole pages: the old contents need not survive.
    constexpr std::size_t kPage = 4096;
    const std::size_t capacity = (bytes + kPage - 1) / kPage * kPage;
    ::operator delete (s.data, std::align_val_t{Scratch::kAlignment});
    s.data = nullptr;
    s.capacity = 0;
    s.data =
        static_cast<std::byte*>(::operator new (capacity, std::align_val_t{Scratch::kAlignment}));
    s.capacity = capacity;
  }
  return {s.data, bytes};
}

Communicator::Communicator(MPI_Comm comm) {
  // From here on, errors thrown anywhere in ringdp name this process's rank.
  detail::set_error_rank_source(&world_rank);
  if (comm == MPI_COMM_NULL)
    throw InvalidArgument("cannot build a Communicator from MPI_COMM_NULL");
  MPI_Comm dup = MPI_COMM_NULL;
  RINGDP_MPI_CHECK(MPI_Comm_dup(comm, &dup));
  *this = Communicator(Adopt{}, dup);
  // The ranks' settings (RINGDP_*) must be well formed and match where they must: checked
  // here, on the new communicator, so that a bad or differing variable is the same error
  // on every rank before any collective runs. A failure frees the duplicate: the
  // destructor does not run for a constructor that throws.
  try {
    agree_on_settings(*this);
  } catch (...) {
    reset();
    throw;
  }
}

Communicator::Communicator(Adopt, MPI_Comm owned, const Communicator* parent) : comm_(owned) {
  check_mode_ = read_settings().values.check;
  if (comm_ == MPI_COMM_NULL) return;
  // Errors on our own handle come back as codes (RINGDP_MPI_CHECK turns them into
  // exceptions) instead of aborting the caller's job from inside MPI.
  try {
    RINGDP_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    RINGDP_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    RINGDP_MPI_CHECK(MPI_Comm_size(comm_, &size_));
    stall_ = parent != nullptr && parent->stall_ ? detail::make_stall_state(*parent->stall_)
                                                 : detail::make_stall_state(comm_, rank_, size_);
    node_ = detail::make_node_state(comm_, rank_, size_);
  } catch (...) {
    reset();  // the destructor does not run for a constructor that throws
    throw;
  }
}

Communicator::~Communicator() { reset(); }

Communicator::Communicator(Communicator&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      rank_(std::exchange(other.rank_, -1)),
      size_(std::exchange(other.size_, 0)),
      check_mode_(other.check_mode_),
      scratch_(std::move(other.scratch_)),
      stall_(std::move(other.stall_)),
      node_(std::move(other.node_)) {}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    reset();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    rank_ = std::exchange(other.rank_, -1);
    size_ = std::exchange(other.size_, 0);
    check_mode_ = other.check_mode_;
    scratch_ = std::move(other.scratch_);
    stall_ = std::move(other.stall_);
    node_ = std::move(other.node_);
  }
  return *this;
}

void Communicator::reset() noexcept {
  node_.reset();   // frees the shared windows and the node communicator
  stall_.reset();  // frees the report channel (its deleter does nothing after MPI_Finalize)
  // Freeing after MPI_Finalize is an error; the handle is gone with MPI then anyway.
  if (comm_ != MPI_COMM_NULL && !Environment::finalized()) {
    if (MPI_Comm_free(&comm_) != MPI_SUCCESS) {
      std::fprintf(stderr, "ringdp: rank %d: MPI_Comm_free failed in ~Communicator\n", rank_);
    }
  }
  comm_ = MPI_COMM_NULL;
  rank_ = -1;
  size_ = 0;
}

Communicator Communicator::split(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  RINGDP_MPI_CHECK(MPI_Comm_split(comm_, color, key, &out));
  Communicator result(Adopt{}, out);
  result.check_mode_ = check_mode_;
  return result;
}

Communicator Communicator::duplicate() const {
  MPI_Comm out = MPI_COMM_NULL;
  RINGDP_MPI_CHECK(MPI_Comm_dup(comm_, &out));
  Communicator result(Adopt{}, out, this);
  result.check_mode_ = check_mode_;
  return result;
}

void Communicator::barrier() const {
  const detail::CollectiveScope scope(*this, "barrier");
  detail::Requests flight(*this);
  RINGDP_MPI_CHECK(MPI_Ibarrier(comm_, flight.collective()));
  flight.wait_all();
}

std::uint64_t Communicator::collective_count() const noexcept {
  return stall_ ? stall_->sequence : 0;
}

void Communicator::set_stall_context(const StallContext& context) noexcept {
  if (!stall_) return;
  stall_->step.store(context.step, std::memory_order_relaxed);
  stall_->first_bucket.store(context.first_bucket, std::memory_order_relaxed);
  stall_->buckets.store(context.buckets, std::memory_order_relaxed);
}

StallContext Communicator::stall_context() const noexcept {
  return stall_ ? stall_->context() : StallContext{};
}

}  // namespace ringdp
