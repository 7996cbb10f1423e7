#pragma once
/// \file
/// Collective operations over a Communicator: allreduce (with a choice of algorithm),
/// broadcast, allgather and reduce_scatter.
///
/// Every function is collective: all ranks of `comm` must call it, in the same order,
/// with the same counts, type, operation and algorithm (check mode, see
/// Communicator::set_check_mode, verifies this and throws on every rank when a rank
/// differs). They are not thread-safe per communicator: call them on one communicator
/// from one thread at a time. Errors throw ringdp::Error (MpiError for MPI failures,
/// InvalidArgument for arguments ringdp cannot accept).
///
/// The element type T must be float, double, std::int32_t or std::int64_t (the concept
/// Reducible); other types do not compile. Integer Sum and Product wrap around (two's
/// complement) on overflow, like MPI.

#include <span>

#include "ringdp/types.hpp"
#include "ringdp/comm/communicator.hpp"

namespace ringdp {

/// In place: on return every rank holds the reduction over all ranks of `data`, and the
/// result is bit-identical on every rank, whatever the algorithm. Any count (0 included).
/// `Average` needs a floating-point T: with an integer T it throws InvalidArgument on
/// every rank (use average() to have the compiler reject it instead). `Auto` resolves to
/// RINGDP_ALGORITHM when set, else to the RINGDP_TUNING file's rule for this size and rank
/// count, else to select_algorithm(bytes, ranks) (see resolve_algorithm()).
template <Reducible T>
void allreduce(const Communicator& comm, std::span<T> data, ReduceOp op = ReduceOp::Sum,
               Algorithm algorithm = Algorithm::Auto);

/// allreduce with ReduceOp::Average, rejected at compile time for integer types.
template <Reducible T>
requires std::floating_point<T>
void average(const Communicator& comm, std::span<T> data, Algorithm algorithm = Algorithm::Auto) {
  allreduce(comm, data, ReduceOp::Average, algorithm);
}

/// Copies `data` of rank `root` into `data` of every other rank. Every rank passes a span
/// of the same size. Throws InvalidArgument when root is not a rank of comm.
template <Reducible T>
void broadcast(const Communicator& comm, std::span<T> data, int root = 0);

/// Gathers every rank's `mine` (all of the same size m) into `all` (size m x ranks) on
/// every rank, rank r's elements at [r*m, (r+1)*m) (`mine` may be that block of `all`).
/// `algorithm`: Ring (around the ranks, in segments), Shm (through the node's shared
/// window; every rank on one node), Mpi (MPI_Allgather), or Auto: Shm when every rank
/// shares one node, else Ring. Throws InvalidArgument when all.size() != mine.size() *
/// comm.size(), or for another algorithm (or Shm over several nodes).
template <Reducible T>
void allgather(const Communicator& comm, std::span<const T> mine, std::span<T> all,
               Algorithm algorithm = Algorithm::Auto);

/// Reduces `data` (the same size on every rank, ranks x b elements) over all ranks and
/// leaves block r, elements [r*b, (r+1)*b) of the reduction, in rank r's `my_block`
/// (size b), like MPI_Reduce_scatter_block. `algorithm` as for allgather(). The result
/// equals MPI's within the rounding of a different summation order (exactly for integers,
/// Min and Max). Throws InvalidArgument when data.size() != my_block.size() * comm.size(),
/// for Average with an integer T, or for another algorithm.
template <Reducible T>
void reduce_scatter(const Communicator& comm, std::span<const T> data, std::span<T> my_block,
                    ReduceOp op = ReduceOp::Sum, Algorithm algorithm = Algorithm::Auto);

}  // namespace ringdp
