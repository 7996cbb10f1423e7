// Ring allreduce: a reduce-scatter followed by an allgather around the ring of ranks.
//
// The buffer is cut into n chunks (n = ranks), as even as possible: chunk c starts at
// c*(count/n) + min(c, count%n), so sizes differ by at most one element and any count
// works (chunks are empty when count < n). In step g (0 <= g < 2(n-1)) rank r sends chunk
// (r - g) mod n to its right neighbour and receives chunk (r - g - 1) mod n from its left.
//   - Steps 0 .. n-2 (reduce-scatter): the received chunk is reduced into the caller's
//     buffer. What rank r sends in step g+1 is exactly what it reduced in step g, so each
//     chunk travels the ring gathering one rank's contribution per hop; after n-1 steps
//     rank r holds the complete reduction of chunk (r + 1) mod n.
//   - Steps n-1 .. 2n-3 (allgather): the complete chunks travel on around the ring and
//     are received straight into the caller's buffer. Each chunk's final bytes were made
//     by one rank only and then copied, so every rank ends bit-identical.
// Per rank this moves 2(n-1)/n x N bytes each way, independent of n for large n.
//
// Each step moves its chunk in segments of ring_segment_bytes(n): while the left
// neighbour's next segments are in flight, this rank reduces the segment that arrived,
// so transfer and reduction overlap, and the segment being reduced (plus the caller's
// matching slice) stays in cache. Received segments land in a few scratch slots owned by
// the communicator, kept across calls: no full-size temporary is ever allocated, and
// repeated calls do not page-fault fresh memory (the cause of MPI_Allreduce's collapse
// for large messages on this machine).

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "algorithms.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/settings.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "comm/wait.hpp"

namespace ringdp {
namespace {

// Default segment size, measured on the development machine (2-core AMD EPYC VM, 1 MiB L2
// per core, Open MPI 4.1.4 over shared memory, float sum at 2 ranks, scripts/env.sh
// sourced): a driver timing ring at segment sizes 32..512 KiB and MPI_Allreduce
// interleaved in one run (`mpirun -np 2 driver 9 ring:32768,ring:65536,ring:131072,
// ring:262144,ring:524288,mpi 1048576 4194304 16777216 67108864`, median of 9). The
// machine was loaded by other jobs (load average 7-13), so only the ordering counts.
// busbw GB/s for 32K / 64K / 128K / 256K / 512K segments (mpi):
//     1 MiB  0.084 / 0.111 / 0.107 / 0.093 / 0.102  (0.093)
//     4 MiB  0.083 / 0.084 / 0.121 / 0.109 / 0.085  (0.075)
//    16 MiB  0.103 / 0.125 / 0.117 / 0.127 / 0.116  (0.076)
//    64 MiB  0.099 / 0.108 / 0.122 / 0.135 / 0.123  (0.042)
// and in an earlier, less loaded run (7 repetitions) 128 KiB was best at 1 and 64 MiB.
// 128 KiB is best or within noise of it everywhere; with 3 receive slots the scratch
// (384 KiB) and the segment being reduced stay in the 1 MiB L2. Overridable with
// RINGDP_SEGMENT_BYTES, and per rank count by a tuning file (RINGDP_TUNING): over Open
// MPI's TCP transport a segment above its eager limit (64 KiB) costs a rendezvous round
// trip per segment, and with 2 hosts the two directions of the ring share one connection
// and take turns, so the ring ran at half the link rate with 128 KiB segments and at the
// full rate with 32 KiB ones (bench/cluster/README.md).
constexpr std::size_t kDefaultSegmentBytes = 128 * 1024;

std::atomic<std::size_t>& segment_override() {
  static std::atomic<std::size_t> bytes{read_settings().values.segment_bytes};
  return bytes;
}

}  // namespace

std::size_t ring_segment_bytes() noexcept {
  return segment_override().load(std::memory_order_relaxed);
}

void set_ring_segment_bytes(std::size_t bytes) noexcept {
  segment_override().store(bytes, std::memory_order_relaxed);
}

std::size_t ring_segment_bytes(int ranks) {
  // An explicit setting wins over the tuning file, as RINGDP_ALGORITHM wins over it for
  // the algorithm: the file holds measured defaults, the variable a deliberate choice.
  if (const std::size_t set = ring_segment_bytes(); set != 0) return set;
  if (const TuningTable* table = tuning_from_environment()) {
    if (const auto tuned = table->segment_bytes(ranks)) return *tuned;
  }
  return kDefaultSegmentBytes;
}

namespace detail {
namespace {

constexpr int kRingTag = 0x5249;  // "RI"
// Receive slots in flight per step: while one segment is reduced, the next ones arrive.
constexpr std::size_t kSlots = 3;
constexpr std::size_t kMaxSegmentsPerStep = std::size_t{1} << 20;

struct Chunk {
  std::size_t begin;
  std::size_t size;
};

Chunk chunk_of(std::size_t count, int n, int c) {
  const std::size_t base = count / static_cast<std::size_t>(n);
  const std::size_t rem = count % static_cast<std::size_t>(n);
  const auto uc = static_cast<std::size_t>(c);
  return {uc * base + std::min(uc, rem), base + (uc < rem ? 1 : 0)};
}

std::size_t segments_in(std::size_t size, std::size_t segment) {
  return (size + segment - 1) / segment;
}

}  // namespace

template <Reducible T>
void allreduce_ring(const Communicator& comm, std::span<T> data, ReduceOp op) {
  const int n = comm.size();
  const int rank = comm.rank();
  const std::size_t count = data.size();
  if (n == 1 || count == 0) return;

  const std::size_t segment = std::max<std::size_t>(1, ring_segment_bytes(n) / sizeof(T));
  const int right = (rank + 1) % n;
  const int left = (rank + n - 1) % n;
  const MPI_Comm mcomm = comm.native();
  const MPI_Datatype type = mpi_datatype<T>();
  T* const base = data.data();
  // Segments are never so small that one step needs more than kMaxSegmentsPerStep
  // requests (a tiny segment setting with a huge buffer), nor above an MPI int count.
  const std::size_t largest_chunk = chunk_of(count, n, 0).size;
  const std::size_t seg =
      std::min(std::max(segment, (largest_chunk + kMaxSegmentsPerStep - 1) / kMaxSegmentsPerStep),
               max_mpi_count());
  // Received segments land in kSlots scratch slots kept by the communicator.
  T* const slots = reinterpret_cast<T*>(comm.scratch(kSlots * seg * sizeof(T)).data());

  // Sends of the current step, and those of the next step, which are posted during this
  // one: a segment is forwarded to the right as soon as it is final here (reduced, or
  // received in the allgather), while it is still in cache, instead of being read back
  // from memory at the start of the next step.
  std::vector<MPI_Request> sends;
  std::vector<MPI_Request> next_sends;
  std::vector<MPI_Request> recvs;
  auto isend = [&](std::vector<MPI_Request>& into, const T* from, std::size_t elements) {
    into.push_back(MPI_REQUEST_NULL);
    RINGDP_MPI_CHECK(
        MPI_Isend(from, static_cast<int>(elements), type, right, kRingTag, mcomm, &into.back()));
  };

  // Step 0 sends this rank's own chunk as it is; every later send is a forward.
  const Chunk own = chunk_of(count, n, rank);
  for (std::size_t offset = 0; offset < own.size; offset += seg) {
    isend(sends, base + own.begin + offset, std::min(seg, own.size - offset));
  }

  const int last_step = 2 * (n - 1) - 1;
  for (int step = 0; step <= last_step; ++step) {
    const bool reducing = step < n - 1;
    const Chunk in = chunk_of(count, n, ((rank - step - 1) % n + n) % n);
    const std::size_t in_segments = segments_in(in.size, seg);
    // What arrives in this step is what this rank sends in the next one.
    auto forward = [&](const T* segment, std::size_t elements) {
      if (step < last_step) isend(next_sends, segment, elements);
    };

    recvs.assign(in_segments, MPI_REQUEST_NULL);
    if (reducing) {
      // Segment k arrives in slot k % kSlots. A slot is reposted only after its segment
      // was reduced, so up to kSlots - 1 segments transfer while one is reduced.
      auto post = [&](std::size_t k) {
        const std::size_t offset = k * seg;
        const int piece = static_cast<int>(std::min(seg, in.size - offset));
        RINGDP_MPI_CHECK(
            MPI_Irecv(slots + (k % kSlots) * seg, piece, type, left, kRingTag, mcomm, &recvs[k]));
      };
      for (std::size_t k = 0; k < std::min(kSlots, in_segments); ++k) post(k);
      for (std::size_t k = 0; k < in_segments; ++k) {
        wait(comm, recvs[k]);
        const std::size_t offset = k * seg;
        const std::size_t piece = std::min(seg, in.size - offset);
        T* target = base + in.begin + offset;
        reduce_into(target, slots + (k % kSlots) * seg, piece, op);
        // The last reduce-scatter step completes this rank's chunk: divide for Average
        // here, once, by the only rank that owns it, while the segment is still in cache.
        if (op == ReduceOp::Average && step == n - 2) finish_average(target, piece, n);
        forward(target, piece);
        if (k + kSlots < in_segments) post(k + kSlots);
      }
    } else {
      // Allgather: final segments go straight to their place in the caller's buffer.
      for (std::size_t k = 0; k < in_segments; ++k) {
        const std::size_t offset = k * seg;
        const int piece = static_cast<int>(std::min(seg, in.size - offset));
        RINGDP_MPI_CHECK(
            MPI_Irecv(base + in.begin + offset, piece, type, left, kRingTag, mcomm, &recvs[k]));
      }
      for (std::size_t k = 0; k < in_segments; ++k) {
        wait(comm, recvs[k]);
        const std::size_t offset = k * seg;
        forward(base + in.begin + offset, std::min(seg, in.size - offset));
      }
    }
    // Why waiting here is enough and safe:
    //  - The chunk sent in step g is next written in step g + n - 1 (with 2 ranks, the
    //    very next step: the allgather receives into the chunk sent in step 0); MPI
    //    forbids writing under a pending send, so step g's sends finish before step g+1.
    //  - The forwards posted during this step read segments that are final until the
    //    chunk comes round again, n >= 2 steps later; they are waited for next step.
    //  - Deadlock-free: every wait is for a receive whose matching send was posted
    //    before its sender could block, or for sends whose receives the right neighbour
    //    posts without waiting on this rank.
    wait_all(comm, sends);
    sends.swap(next_sends);
    next_sends.clear();
  }
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_ring<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace detail
}  // namespace ringdp
