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
