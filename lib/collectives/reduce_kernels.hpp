#pragma once
// The element-wise reduction loops every algorithm shares. They are the ring's inner loop,
// so they are written for the vectoriser: the operation is a template parameter (no
// switch per element), the pointers are __restrict (the received segment never aliases
// the caller's buffer), and Min/Max use the plain comparison form that maps to
// min/max instructions.

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "ringdp/types.hpp"
#include "ringdp/error.hpp"

namespace ringdp::detail {

// Integer Sum/Product are done in the unsigned type: two's-complement wrap-around is
// then defined behaviour (signed overflow is not), and the bits equal what MPI returns.
template <class T>
struct ArithmeticOf {
  using type = T;
};
template <std::integral T>
struct ArithmeticOf<T> {
  using type = std::make_unsigned_t<T>;
};
template <class T>
using Arithmetic = typename ArithmeticOf<T>::type;

template <ReduceOp Op, class T>
inline T combine(T a, T b) {
  if constexpr (Op == ReduceOp::Sum || Op == ReduceOp::Average) {
    return static_cast<T>(static_cast<Arithmetic<T>>(a) + static_cast<Arithmetic<T>>(b));
  } else if constexpr (Op == ReduceOp::Product) {
    return static_cast<T>(static_cast<Arithmetic<T>>(a) * static_cast<Arithmetic<T>>(b));
  } else if constexpr (Op == ReduceOp::Min) {
    return b < a ? b : a;
  } else {
    return a < b ? b : a;
  }
}

// dst[i] = dst[i] op src[i] when LowerIsDst, else dst[i] = src[i] op dst[i]. The operand
// order matters for bit-identical results: Sum and Product are commutative in IEEE
// arithmetic, but Min/Max of -0.0 and +0.0 (or of NaNs) return the first operand, so
// algorithms where two ranks combine the same pair put the lower rank's operand first.
template <ReduceOp Op, bool LowerIsDst, class T>
void reduce_loop(T* __restrict dst, const T* __restrict src, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if constexpr (LowerIsDst) {
      dst[i] = combine<Op>(dst[i], src[i]);
    } else {
      dst[i] = combine<Op>(src[i], dst[i]);
    }
  }
}

/// dst = dst op src, element-wise (dst holds the lower rank's operand when `dst_first`).
/// Average combines like Sum; divide with finish_average() once all ranks are summed.
template <class T>
void reduce_into(T* dst, const T* src, std::size_t count, ReduceOp op, bool dst_first = true) {
  auto run = [&]<ReduceOp Op>() {
    if (dst_first) {
      reduce_loop<Op, true>(dst, src, count);
    } else {
      reduce_loop<Op, false>(dst, src, count);
    }
  };
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Average:
      run.template operator()<ReduceOp::Sum>();
      return;
    case ReduceOp::Min:
      run.template operator()<ReduceOp::Min>();
      return;
    case ReduceOp::Max:
      run.template operator()<ReduceOp::Max>();
      return;
    case ReduceOp::Product:
      run.template operator()<ReduceOp::Product>();
      return;
  }
  throw InvalidArgument("unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

// The fused pass of a node-local reduction: out[q][i] = in[0][i] op in[1][i] op ... op
// in[p-1][i] (rank order, as reduce_into() applied p-1 times), divided by p for Average,
// for every output q. All inputs and outputs advance together, a block of kFusedBlock
// bytes at a time, so each is one continuous stream that the hardware prefetchers follow;
// reducing a piece at a time through a scratch copy (one pass per input, one per output)
// restarts those streams every piece and measured 1.4-2.5x slower at 16-64 MiB on the
// 2-core VM (bench/README.md, "shm: one pass"). Every input of a block is read before any
// output of it is written, so an output may be one of the inputs (in place).
inline constexpr std::size_t kFusedBlock = 256;

template <ReduceOp Op, class T>
void reduce_all_loop(const T* const* in, int p, T* const* out, int q, std::size_t count,
                     int average_over) {
  constexpr std::size_t kBlock = kFusedBlock / sizeof(T);
  alignas(64) T acc[kBlock];
  auto block = [&](std::size_t at, auto n) {
    for (std::size_t i = 0; i < n; ++i) acc[i] = in[0][at + i];
    for (int k = 1; k < p; ++k) {
      const T* src = in[k] + at;
      for (std::size_t i = 0; i < n; ++i) acc[i] = combine<Op>(acc[i], src[i]);
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (average_over > 0) {
        const T divisor = static_cast<T>(average_over);
        for (std::size_t i = 0; i < n; ++i) acc[i] = acc[i] / divisor;
      }
    }
    for (int k = 0; k < q; ++k) {
      T* dst = out[k] + at;
      for (std::size_t i = 0; i < n; ++i) dst[i] = acc[i];
    }
  };
  std::size_t at = 0;
  // A constant trip count for whole blocks: the loops become a few vector instructions.
  for (; at + kBlock <= count; at += kBlock) block(at, std::integral_constant<std::size_t, kBlock>{});
  if (at < count) block(at, count - at);
}

/// Reduces `count` elements of the p = in.size() inputs in rank order and writes the
/// result to every output (see reduce_all_loop); Average divides by p. Outputs may alias
/// inputs element for element (in place), not otherwise.
template <class T>
void reduce_to_all(std::span<const T* const> in, std::span<T* const> out, std::size_t count,
                   ReduceOp op) {
  if (count == 0 || in.empty()) return;
  const int p = static_cast<int>(in.size());
  const int q = static_cast<int>(out.size());
  const int average = op == ReduceOp::Average ? p : 0;
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Average:
      return reduce_all_loop<ReduceOp::Sum>(in.data(), p, out.data(), q, count, average);
    case ReduceOp::Min:
      return reduce_all_loop<ReduceOp::Min>(in.data(), p, out.data(), q, count, 0);
    case ReduceOp::Max:
      return reduce_all_loop<ReduceOp::Max>(in.data(), p, out.data(), q, count, 0);
    case ReduceOp::Product:
      return reduce_all_loop<ReduceOp::Product>(in.data(), p, out.data(), q, count, 0);
  }
  throw InvalidArgument("unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

/// For Average: divides the summed elements by the rank count. Division (not multiplying
/// by 1/n) so that the result is the correctly rounded quotient, as a user would compute.
template <class T>
void finish_average(T* data, std::size_t count, int ranks) {
  if constexpr (std::is_floating_point_v<T>) {
    const T divisor = static_cast<T>(ranks);
    for (std::size_t i = 0; i < count; ++i) data[i] = data[i] / divisor;
  } else {
    (void)data;
    (void)count;
    (void)ranks;
  }
}

}  // namespace ringdp::detail
