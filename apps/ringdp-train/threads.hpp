#pragma once
// The compute threads of the ranks against the CPUs they may use: a header line and the
// warnings about layouts that oversubscribe the cores.

#include "console.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/train/trainer.hpp"

namespace ringdp_train {

/// Collective: gathers every rank's compute threads (Trainer::cores()), the CPUs it may run
/// on and its host's CPUs. Rank 0 prints a `threads` line when a rank runs more than one
/// compute thread, and a warning when a rank runs more compute threads than it has CPUs
/// (its binding is narrower than --threads) or when the ranks x threads of a host exceed
/// the CPUs that host has online.
void report_thread_layout(const ringdp::Communicator& comm, const ringdp::train::Trainer& trainer,
                          Console& out);

}  // namespace ringdp_train
