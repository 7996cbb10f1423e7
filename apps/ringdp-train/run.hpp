#pragma once
// The training run of ringdp-train.

#include "options.hpp"

namespace ringdp_train {

/// Trains as `options` says, on every rank of MPI_COMM_WORLD (collective). Rank 0 prints.
/// Throws ringdp::Error; Error::collective() tells whether every rank throws it together.
void run(const Options& options);

}  // namespace ringdp_train
