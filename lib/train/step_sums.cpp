#include "train/step_sums.hpp"

#include <algorithm>
#include <type_traits>

#include "comm/requests.hpp"
#include "comm/wait.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::train::detail {
namespace {

static_assert(std::is_standard_layout_v<StepSums> && sizeof(StepSums) == 7 * sizeof(double),
              "StepSums travels as 7 contiguous doubles");

// MPI_User_function: inout[i] = in[i] (+) inout[i] element-wise. Sums and a minimum are
// both commutative and associative (the sums up to rounding, as with MPI_SUM), so MPI may
// combine in any order; the counts are integers below 2^53 and stay exact.
void combine(void* in, void* inout, int* length, MPI_Datatype* /*type*/) {
  const auto* a = static_cast<const StepSums*>(in);
  auto* b = static_cast<StepSums*>(inout);
  for (int i = 0; i < *length; ++i) {
    b[i].loss_sum += a[i].loss_sum;
    b[i].correct += a[i].correct;
    b[i].count += a[i].count;
    b[i].failed_ranks += a[i].failed_ranks;
    b[i].bad_ranks += a[i].bad_ranks;
    b[i].first_bad_rank = std::min(b[i].first_bad_rank, a[i].first_bad_rank);
    b[i].bad_gradient_ranks += a[i].bad_gradient_ranks;
  }
}

}  // namespace

StepSumsReduction::StepSumsReduction() {
  RINGDP_MPI_CHECK(MPI_Type_contiguous(7, MPI_DOUBLE, &type_));
  try {
    RINGDP_MPI_CHECK(MPI_Type_commit(&type_));
    RINGDP_MPI_CHECK(MPI_Op_create(&combine, 1, &op_));
  } catch (...) {
    MPI_Type_free(&type_);  // the destructor does not run for a throwing constructor
    throw;
  }
}

StepSumsReduction::~StepSumsReduction() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (op_ != MPI_OP_NULL) MPI_Op_free(&op_);
  if (type_ != MPI_DATATYPE_NULL) MPI_Type_free(&type_);
}

void StepSumsReduction::reduce(const Communicator& comm, StepSums& sums) const {
  // Non-blocking, completed through the library's watched wait: a rank that died or
  // stalls before this allreduce is reported (and, with RINGDP_STALL_ABORT_SECONDS, ends
  // the job) instead of leaving the others blocked in MPI for ever. PMPI_: an interposed
  // MPI_Allreduce (libringdp_mpi.so) must never see the library's own calls.
  // The request is owned by Requests: if the wait throws, it is completed before `sums`
  // (the caller's) can go.
  const ringdp::detail::CollectiveScope scope(comm, "allreduce");
  ringdp::detail::Requests requests(comm);
  RINGDP_MPI_CHECK(
      PMPI_Iallreduce(MPI_IN_PLACE, &sums, 1, type_, op_, comm.native(), requests.collective()));
  requests.wait_all();
}

}  // namespace ringdp::train::detail
