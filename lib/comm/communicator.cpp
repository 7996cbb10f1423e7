#include "ringdp/comm/communicator.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
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

Communicator::Communicator(MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) throw InvalidArgument("cannot build a Communicator from MPI_COMM_NULL");
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
      check_mode_(other.check_mode_) {}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    reset();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    rank_ = std::exchange(other.rank_, -1);
    size_ = std::exchange(other.size_, 0);
    check_mode_ = other.check_mode_;
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
