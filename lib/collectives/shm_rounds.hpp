#pragma once
// The pieces of a node-local collective that moves more than one round can hold.
//
// A buffer of `count` elements is cut into one slice per owner (owner j: ranks of the node
// 0 .. owners-1). Round r covers piece r of every slice: elements [begin_j + r*P,
// begin_j + (r+1)*P) of slice j, P = stage_bytes / (owners x element size), so that one
// round of a rank's input (its pieces for every owner, side by side) fills its staging
// area. Per round:
//   stage    each rank copies its pieces into its staging area (unless its buffer lives in
//            the window: then the owners read it where it is) and says `arrived`;
//   combine  owner j reads piece j of every rank, in rank order 0 .. p-1, reduces them and
//            writes the result (to its result area, or straight to its own buffer), and
//            says `reduced`;
//   gather   every rank copies each owner's result piece to its place in its own buffer,
//            and says `copied`.
// Rounds overlap: a rank stages round r+1 before it gathers round r, so owners find the
// next round's input ready. Both areas have two parities (shm_sync.hpp), and the waits for
// reuse ask only for round r-2.
// Why this is close to the memory floor for any buffer: each rank reads its input once
// from memory and writes its result once; the staging and result pieces, written and read
// again within a round, stay in the caches (a round is sized to fit).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

#include "reduce_kernels.hpp"
#include "shm_sync.hpp"

namespace ringdp::detail {

struct Slice {
  std::size_t begin = 0;
  std::size_t size = 0;
};

// `count` elements in `parts` slices as even as possible (the ring's chunking): sizes
// differ by at most one, the larger ones first.
inline Slice even_slice(std::size_t count, int parts, int j) {
  const std::size_t base = count / static_cast<std::size_t>(parts);
  const std::size_t rem = count % static_cast<std::size_t>(parts);
  const auto uj = static_cast<std::size_t>(j);
  return {uj * base + std::min(uj, rem), base + (uj < rem ? 1 : 0)};
}

// memcpy of n elements; nothing for n = 0, whose pointers may be null (an empty call
// still takes part in the rounds, and memcpy must not be given a null pointer).
template <class T>
void copy_elements(T* to, const T* from, std::size_t n) noexcept {
  if (n > 0) std::memcpy(to, from, n * sizeof(T));
}

template <class T>
class ShmRounds {
 public:
  // `slices`: one per owner. `stage_bytes`: the window's staging area per parity.
  ShmRounds(ShmSync& sync, std::vector<Slice> slices) : sync_(sync), slices_(std::move(slices)) {
    const std::size_t owners = slices_.size();
    piece_ = std::max<std::size_t>(1, sync.window().stage_bytes() / (owners * sizeof(T)));
    std::size_t longest = 0;
    for (const Slice& s : slices_) longest = std::max(longest, s.size);
    rounds_ = std::max<std::size_t>(1, (longest + piece_ - 1) / piece_);
  }

  [[nodiscard]] std::size_t rounds() const noexcept { return rounds_; }
  [[nodiscard]] int owners() const noexcept { return static_cast<int>(slices_.size()); }
  [[nodiscard]] const Slice& slice(int owner) const noexcept {
    return slices_[static_cast<std::size_t>(owner)];
  }
  // Owner j's piece of round r: first element (in the buffer) and length (may be 0).
  [[nodiscard]] std::size_t begin(int j, std::size_t r) const noexcept {
    return slice(j).begin + std::min(r * piece_, slice(j).size);
  }
  [[nodiscard]] std::size_t length(int j, std::size_t r) const noexcept {
    const std::size_t done = std::min(r * piece_, slice(j).size);
    return std::min(piece_, slice(j).size - done);
  }
  // Rank k's staged piece for owner j in round r.
  [[nodiscard]] T* staged(int k, int j, std::size_t r) const noexcept {
    return reinterpret_cast<T*>(sync_.window().staging(k, sync_.round(r))) +
           static_cast<std::size_t>(j) * piece_;
  }
  // Owner j's result piece of round r.
  [[nodiscard]] T* result(int j, std::size_t r) const noexcept {
    return reinterpret_cast<T*>(sync_.window().result(j, sync_.round(r)));
  }

  // Stage: copies this rank's pieces of round r from `input` (the whole buffer) into its
  // staging area, once no owner reads round r-2's any more; `input` null: nothing to copy
  // (the input lives in the window). The piece for owner `keep` (-1: none) is not copied:
  // that owner is this rank, and reads it in place. Then says `arrived`.
  void stage(std::size_t r, const T* input, int keep = -1) {
    if (input != nullptr) {
      sync_.wait_reuse(ShmFlag::Reduced, r);
      for (int j = 0; j < owners(); ++j) {
        if (j == keep) continue;
        copy_elements(staged(sync_.rank(), j, r), input + begin(j, r), length(j, r));
      }
    }
    sync_.set(ShmFlag::Arrived, r);
  }

  // Combine, by owner j = this rank: waits for every rank's round r, then reduces every
  // rank's piece j, in rank order, into `out` (length(j, r) elements), or into its result
  // area for the others to gather when `out` is null, or into both with `publish`.
  // `in[k]`: rank k's whole buffer where it lives in the window (or, for k = this rank,
  // where this rank reads it in place), or null when rank k staged it. Says `reduced`.
  void combine(std::size_t r, std::span<const T* const> in, T* out, ReduceOp op,
               bool publish = false) {
    const int j = sync_.rank();
    const std::size_t n = length(j, r);
    sync_.wait_all(ShmFlag::Arrived, r);
    auto piece_of = [&](int k) -> const T* {
      const T* shared = in[static_cast<std::size_t>(k)];
      return shared != nullptr ? shared + begin(j, r) : staged(k, j, r);
    };
    std::array<T*, 2> to{out, nullptr};
    std::size_t outputs = 1;
    if (out == nullptr || publish) {
      sync_.wait_reuse(ShmFlag::Copied, r);
      to[out == nullptr ? 0 : outputs++] = result(j, r);
    }
    // One pass over the p pieces (reduce_to_all); `out` may be this rank's own input piece.
    pieces_.resize(static_cast<std::size_t>(sync_.ranks()));
    for (int k = 0; k < sync_.ranks(); ++k) pieces_[static_cast<std::size_t>(k)] = piece_of(k);
    reduce_to_all<T>(pieces_, std::span<T* const>(to.data(), outputs), n, op);
    sync_.set(ShmFlag::Reduced, r);
  }

  // Publish, by owner j = this rank: copies its piece of round r from `source` (its slice,
  // from the slice's first element) into its result area for the others to gather, once
  // they are done with round r-2's. Says `reduced`.
  void publish(std::size_t r, const T* source) {
    const int j = sync_.rank();
    sync_.wait_reuse(ShmFlag::Copied, r);
    copy_elements(result(j, r), source + (begin(j, r) - slice(j).begin), length(j, r));
    sync_.set(ShmFlag::Reduced, r);
  }

  // Gather: waits for every owner's round r and copies owner j's piece to out + begin(j, r),
  // skipping owner `skip` (-1: none). `from[j]`: owner j's slice where it lives in the
  // window (from its first element; read in place), or null for its result area; empty:
  // all from result areas. Says `copied`.
  void gather(std::size_t r, std::span<const T* const> from, T* out, int skip = -1) {
    sync_.wait_all(ShmFlag::Reduced, r);
    for (int j = 0; j < owners(); ++j) {
      if (j == skip) continue;
      const T* shared = from.empty() ? nullptr : from[static_cast<std::size_t>(j)];
      const T* src = shared != nullptr ? shared + (begin(j, r) - slice(j).begin) : result(j, r);
      copy_elements(out + begin(j, r), src, length(j, r));
    }
    sync_.set(ShmFlag::Copied, r);
  }

 private:
  ShmSync& sync_;
  std::vector<Slice> slices_;
  std::size_t piece_ = 1;
  std::size_t rounds_ = 1;
  std::vector<const T*> pieces_;
};

// The whole buffer of every rank of the node that lives in the window (null for the
// others), from the calls they announced; `shared_count`: how many do.
template <class T>
std::vector<const T*> buffers_in_window(const ShmSync& sync, int* shared_count) {
  std::vector<const T*> in(static_cast<std::size_t>(sync.ranks()), nullptr);
  int shared = 0;
  for (int k = 0; k < sync.ranks(); ++k) {
    const ShmCall& call = sync.call_of(k);
    if (call.generation < 0) continue;
    const WindowGeneration* g = sync.windows().generation(call.generation);
    if (g == nullptr) continue;
    in[static_cast<std::size_t>(k)] = reinterpret_cast<const T*>(g->arena(k) + call.offset);
    ++shared;
  }
  if (shared_count != nullptr) *shared_count = shared;
  return in;
}

}  // namespace ringdp::detail
