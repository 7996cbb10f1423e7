#include "ringdp/comm/communicator.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/detail/mpi_check.hpp"

namespace ringdp {
namespace {

bool check_mode_from_environment() {
  const char* value = std::getenv("RINGDP_CHECK");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

}  // namespace

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
  if (comm == MPI_COMM_NULL)
    throw InvalidArgument("cannot build a Communicator from MPI_COMM_NULL");
  MPI_Comm dup = MPI_COMM_NULL;
  RINGDP_MPI_CHECK(MPI_Comm_dup(comm, &dup));
  *this = Communicator(Adopt{}, dup);
}

Communicator::Communicator(Adopt, MPI_Comm owned) : comm_(owned) {
  check_mode_ = check_mode_from_environment();
  if (comm_ == MPI_COMM_NULL) return;
  // Errors on our own handle come back as codes (RINGDP_MPI_CHECK turns them into
  // exceptions) instead of aborting the caller's job from inside MPI.
  RINGDP_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  RINGDP_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  RINGDP_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

Communicator::~Communicator() { reset(); }

Communicator::Communicator(Communicator&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      rank_(std::exchange(other.rank_, -1)),
      size_(std::exchange(other.size_, 0)),
      check_mode_(other.check_mode_),
      scratch_(std::move(other.scratch_)) {}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    reset();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    rank_ = std::exchange(other.rank_, -1);
    size_ = std::exchange(other.size_, 0);
    check_mode_ = other.check_mode_;
    scratch_ = std::move(other.scratch_);
  }
  return *this;
}

void Communicator::reset() noexcept {
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

void Communicator::barrier() const { RINGDP_MPI_CHECK(MPI_Barrier(comm_)); }

}  // namespace ringdp
