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
//
// The requests in flight (this step's sends, the next step's forwards, the receives) belong
// to one detail::Requests per call, which settles them if the call unwinds: no receive is
// left writing into the scratch slots or the caller's buffer, and no message of the call is
// left for the next one to receive (comm/requests.hpp).

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "algorithms.hpp"
#include "comm/requests.hpp"
#include "mpi_pieces.hpp"
#include "reduce_kernels.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/comm/settings.hpp"

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

// The segment in elements. Segments are never so small that one step needs more than
// kMaxSegmentsPerStep requests (a tiny segment setting with a huge buffer), nor above an MPI
// int count.
template <class T>
std::size_t segment_elements(std::size_t count, int n) {
  const std::size_t segment = std::max<std::size_t>(1, ring_segment_bytes(n) / sizeof(T));
  const std::size_t largest_chunk = chunk_of(count, n, 0).size;
  return std::min(
      std::max(segment, (largest_chunk + kMaxSegmentsPerStep - 1) / kMaxSegmentsPerStep),
      max_mpi_count());
}

// One call of the ring allreduce on this rank: its neighbours, its buffers, and the
// requests it has in flight (settled by their owner if the call unwinds: requests.hpp).
template <Reducible T>
class RingCall {
 public:
  RingCall(const Communicator& comm, std::span<T> data, ReduceOp op)
      : n_(comm.size()),
        rank_(comm.rank()),
        right_((rank_ + 1) % n_),
        left_((rank_ + n_ - 1) % n_),
        count_(data.size()),
        base_(data.data()),
        op_(op),
        seg_(segment_elements<T>(count_, n_)),
        // Received segments land in kSlots scratch slots kept by the communicator.
        slots_(reinterpret_cast<T*>(comm.scratch(kSlots * seg_ * sizeof(T)).data())),
        flight_(comm, kRingTag, mpi_datatype<T>()) {}

  void run() {
    // Step 0 sends this rank's own chunk as it is; every later send is a forward.
    const Chunk own = chunk_of(count_, n_, rank_);
    for (std::size_t offset = 0; offset < own.size; offset += seg_) {
      send(base_ + own.begin + offset, std::min(seg_, own.size - offset));
    }
    for (int step = 0; step <= last_step(); ++step) {
      // This step's sends: all those posted so far (the earlier steps' are complete).
      const std::size_t step_sends = flight_.sends_posted();
      const Chunk in = chunk_of(count_, n_, ((rank_ - step - 1) % n_ + n_) % n_);
      if (step < n_ - 1) {
        reduce_step(step, in);
      } else {
        gather_step(step, in);
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
      flight_.wait_sends(step_sends);
    }
  }

 private:
  [[nodiscard]] int last_step() const { return 2 * (n_ - 1) - 1; }

  void send(const T* from, std::size_t elements) {
    flight_.isend(from, static_cast<int>(elements), right_);
  }

  // What arrives in a step is what this rank sends in the next one: a segment is forwarded
  // to the right as soon as it is final here (reduced, or received in the allgather), while
  // it is still in cache, instead of being read back from memory at the next step.
  void forward(int step, const T* segment, std::size_t elements) {
    if (step < last_step()) send(segment, elements);
  }

  // Reduce-scatter step: segment k arrives in slot k % kSlots and is reduced into the
  // caller's buffer. A slot is reposted only after its segment was reduced, so up to
  // kSlots - 1 segments transfer while one is reduced.
  void reduce_step(int step, Chunk in) {
    const std::size_t segments = segments_in(in.size, seg_);
    const std::size_t first = flight_.recvs_posted();  // receive k is first + k
    auto post = [&](std::size_t k) {
      const int piece = static_cast<int>(std::min(seg_, in.size - k * seg_));
      flight_.irecv(slots_ + (k % kSlots) * seg_, piece, left_);
    };
    for (std::size_t k = 0; k < std::min(kSlots, segments); ++k) post(k);
    for (std::size_t k = 0; k < segments; ++k) {
      flight_.wait_recv(first + k);
      const std::size_t offset = k * seg_;
      const std::size_t piece = std::min(seg_, in.size - offset);
      T* target = base_ + in.begin + offset;
      reduce_into(target, slots_ + (k % kSlots) * seg_, piece, op_);
      // The last reduce-scatter step completes this rank's chunk: divide for Average
      // here, once, by the only rank that owns it, while the segment is still in cache.
      if (op_ == ReduceOp::Average && step == n_ - 2) finish_average(target, piece, n_);
      forward(step, target, piece);
      if (k + kSlots < segments) post(k + kSlots);
    }
  }

  // Allgather step: final segments go straight to their place in the caller's buffer.
  void gather_step(int step, Chunk in) {
    const std::size_t segments = segments_in(in.size, seg_);
    const std::size_t first = flight_.recvs_posted();
    for (std::size_t k = 0; k < segments; ++k) {
      const std::size_t offset = k * seg_;
      flight_.irecv(base_ + in.begin + offset, static_cast<int>(std::min(seg_, in.size - offset)),
                    left_);
    }
    for (std::size_t k = 0; k < segments; ++k) {
      flight_.wait_recv(first + k);
      const std::size_t offset = k * seg_;
      forward(step, base_ + in.begin + offset, std::min(seg_, in.size - offset));
    }
  }

  const int n_;
  const int rank_;
  const int right_;
  const int left_;
  const std::size_t count_;
  T* const base_;
  const ReduceOp op_;
  const std::size_t seg_;
  T* const slots_;
  Requests flight_;
};

}  // namespace

template <Reducible T>
void allreduce_ring(const Communicator& comm, std::span<T> data, ReduceOp op) {
  if (comm.size() == 1 || data.empty()) return;
  RingCall<T>(comm, data, op).run();
}

#define RINGDP_INSTANTIATE(T) \
  template void allreduce_ring<T>(const Communicator&, std::span<T>, ReduceOp);
RINGDP_INSTANTIATE_FOR_REDUCIBLE(RINGDP_INSTANTIATE)

}  // namespace detail
}  // namespace ringdp
