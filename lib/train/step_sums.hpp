#pragma once
// The one small allreduce of a training step: the sums of the metrics and the lowest rank
// whose local loss is not finite. Private to the library.

#include <mpi.h>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::train::detail {

/// One rank's contribution, and after reduce() the result over all ranks.
struct StepSums {
  double loss_sum = 0.0;      ///< summed
  double correct = 0.0;       ///< summed
  double count = 0.0;         ///< summed (real samples)
  double failed_ranks = 0.0;  ///< summed: ranks whose batch could not be fetched
  double bad_ranks = 0.0;     ///< summed: ranks whose local loss is NaN or Inf
  /// Min-reduced: this rank's number when its local loss is not finite, else kNoRank.
  double first_bad_rank = kNoRank;
  /// Summed: ranks whose averaged gradient holds a NaN or Inf (a replica split over ranks:
  /// each holds other parameters, so their verdicts are agreed here).
  double bad_gradient_ranks = 0.0;

  /// Larger than any rank, exact in a double.
  static constexpr double kNoRank = 2147483647.0;
};

/// Reduces StepSums in ONE MPI_Allreduce with a user-defined operation (sum of the first
/// five fields and the last, minimum of the sixth): a second allreduce for the minimum would double
/// the latency of the step's only blocking collective. The datatype and the operation are created
/// once; the caller's thread must be the only one calling MPI during reduce() (the trainer calls it
/// before backward or after wait_all(), while the reducer's progress thread is idle).
class StepSumsReduction {
 public:
  StepSumsReduction();
  /// Frees the MPI objects unless MPI is already finalised. Never throws.
  ~StepSumsReduction();
  StepSumsReduction(const StepSumsReduction&) = delete;
  StepSumsReduction& operator=(const StepSumsReduction&) = delete;

  /// Collective over `comm`: `sums` becomes the reduction over all ranks, the same on each.
  void reduce(const Communicator& comm, StepSums& sums) const;

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  MPI_Op op_ = MPI_OP_NULL;
};

}  // namespace ringdp::train::detail
