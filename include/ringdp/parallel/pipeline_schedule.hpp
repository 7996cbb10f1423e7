#pragma once
/// \file
/// The 1F1B pipeline schedule: in which order a stage runs the forward and backward
/// passes of a step's micro-batches.

#include <vector>

namespace ringdp::parallel {

/// A forward or a backward pass.
enum class Pass { Forward, Backward };

/// One pass of one micro-batch on a stage.
struct PipelineAction {
  Pass pass = Pass::Forward;
  int micro_batch = 0;
  friend bool operator==(const PipelineAction&, const PipelineAction&) = default;
};

/// The 1F1B ("one forward, one backward", PipeDream-Flush / Megatron-LM) order of stage
/// `stage` of `stages` over `micro_batches` micro-batches: a warm-up of
/// w = min(stages - stage - 1, micro_batches) forwards, then forward w + i followed by
/// backward i for every remaining micro-batch, then the last w backwards. Every stage runs
/// each micro-batch's forward and backward once, forwards and backwards each in
/// micro-batch order, and holds at most w + 1 micro-batches' activations at a time (GPipe's
/// all-forwards-first order would hold all of them). Throws InvalidArgument when
/// stages < 1, stage is out of range or micro_batches < 1. Local, no MPI.
[[nodiscard]] std::vector<PipelineAction> one_forward_one_backward(int stages, int stage,
                                                                   int micro_batches);

/// The fraction of a step a stage of a 1F1B (or GPipe) pipeline is idle when every stage
/// takes the same time per micro-batch and communication is free: (P - 1) / (M + P - 1).
[[nodiscard]] double ideal_bubble_fraction(int stages, int micro_batches);

}  // namespace ringdp::parallel
