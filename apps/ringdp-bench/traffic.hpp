#pragma once
// The memory floor of an allreduce, and the bytes each algorithm moves through memory.
//
// An allreduce of N bytes over p ranks must read every rank's N input bytes once and write
// every rank's N result bytes once: 2pN bytes of memory traffic, all ranks together. The
// floor kernel does exactly that and nothing else (every rank reads and writes its buffer
// in place, all ranks at once), so its time is what the machine's memory allows for that
// traffic. The model of the other algorithms (bench/README.md, "Bytes moved") counts every
// byte read or written by a copy or a reduction, in DRAM or in a cache, as ringdp runs it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "ringdp/comm/node.hpp"
#include "ringdp/types.hpp"

namespace ringdp::bench {

/// Bytes read plus written by one allreduce of `bytes` bytes per rank, all ranks together,
/// by `algorithm` (after Auto was resolved) over `ranks` ranks laid out as `nodes`; `shared`:
/// the buffers are SharedBuffer spans. nullopt for mpi (the MPI library's own algorithm).
[[nodiscard]] std::optional<std::uint64_t> memory_traffic(Algorithm algorithm, std::size_t bytes,
                                                          int ranks, const NodeLayout& nodes,
                                                          bool shared);

/// The floor's traffic for `bytes` bytes per rank over `ranks` ranks: 2 x ranks x bytes.
[[nodiscard]] std::uint64_t floor_traffic(std::size_t bytes, int ranks);

/// The floor kernel: reads and writes every element of `data` once, in place (adds 1).
template <class T>
void stream_in_place(std::span<T> data) {
  for (T& x : data) x = static_cast<T>(x + T(1));
}

}  // namespace ringdp::bench
