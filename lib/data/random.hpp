#pragma once
// A small portable random number generator for the data layer.
//
// The sampler's permutations must be the same on every rank, on every machine and with
// every standard library, run after run. std::shuffle and std::uniform_int_distribution
// are implementation-defined (libstdc++ and libc++ give different sequences), so the data
// layer draws from its own generator: xoshiro256** seeded through splitmix64, with an
// unbiased bounded draw (Lemire's multiply-and-reject) and a plain Fisher-Yates shuffle.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace ringdp::data::detail {

/// One step of splitmix64: advances `state` and returns a well-mixed 64-bit value.
inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Combines a stream key with one more word, so that (seed, epoch, rank, purpose) name
/// independent streams without the caller inventing seeds.
inline std::uint64_t mix(std::uint64_t key, std::uint64_t word) noexcept {
  std::uint64_t state = key ^ (word * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
  return splitmix64(state);
}

/// Purposes of the sampler's streams (so that e.g. the deal and epoch 0 never coincide).
enum class Stream : std::uint64_t {
  kGlobalPermutation = 1,
  kBlockDeal = 2,
  kBlockOrder = 3,
  kWindowShuffle = 4,
  kTeacher = 5,
  kSample = 6,
};

inline std::uint64_t stream_key(std::uint64_t seed, Stream purpose) noexcept {
  return mix(mix(0x72696e6764700000ULL, seed), static_cast<std::uint64_t>(purpose));
}

/// xoshiro256**: fast, 256 bits of state, fully specified by its published algorithm.
class Rng {
 public:
  explicit Rng(std::uint64_t key) noexcept {
    std::uint64_t sm = key;
    for (auto& word : s_) word = splitmix64(sm);
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform integer in [0, bound), bound > 0, without modulo bias: draws below
  /// `threshold` = 2^64 mod bound are rejected, so the accepted range is a whole number of
  /// copies of [0, bound) and the remainder is exactly uniform. Rejection is rare (less
  /// than bound / 2^64 of the draws).
  std::uint64_t below(std::uint64_t bound) noexcept {
    const std::uint64_t threshold = (0 - bound) % bound;
    std::uint64_t x = next();
    while (x < threshold) x = next();
    return x % bound;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// Standard normal (Box-Muller; the second value is discarded to keep the stream simple).
  double normal() noexcept {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

/// Fisher-Yates shuffle with Rng::below, identical on every platform.
template <class T>
void shuffle(std::span<T> values, Rng& rng) noexcept {
  for (std::size_t i = values.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.below(i));
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace ringdp::data::detail
