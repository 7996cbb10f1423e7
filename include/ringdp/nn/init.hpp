#pragma once
/// \file
/// Portable pseudo-random numbers for weight initialisation: the same seed gives the same
/// bits with every standard library, so all ranks and all runs start from the same model.

#include <cstddef>
#include <cstdint>
#include <random>

namespace ringdp::nn {

/// Standard-normal numbers from `std::mt19937_64` (whose output the C++ standard fixes)
/// through our own uniform conversion and Box-Muller transform. `std::normal_distribution`
/// and `std::uniform_real_distribution` are not used: their algorithms are left to each
/// standard library, so they would give different models on different platforms.
/// Not thread-safe (one generator per thread).
class NormalGenerator {
 public:
  explicit NormalGenerator(std::uint64_t seed) : engine_(seed) {}

  /// A uniform number in the open interval (0, 1), from the top 53 bits of one draw.
  double uniform();
  /// A standard-normal number (mean 0, standard deviation 1).
  double normal();
  /// Draws and drops `count` normal numbers: the generator then stands where `count`
  /// calls of normal() leave it (a model holding only later layers of a larger one starts
  /// drawing where the larger model draws for them).
  void skip(std::uint64_t count);

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

/// How a Dense layer draws its initial weights (biases start at zero).
enum class Init {
  /// He et al. 2015: N(0, 2 / fan_in); for layers followed by ReLU.
  He,
  /// Glorot & Bengio 2010 (Xavier), normal form: N(0, 2 / (fan_in + fan_out)); for layers
  /// followed by tanh or by the softmax.
  Xavier,
};

/// The standard deviation of the initial weights of a layer with `fan_in` inputs and
/// `fan_out` outputs: sqrt(2 / fan_in) for He, sqrt(2 / (fan_in + fan_out)) for Xavier.
/// A layer holding a slice of a larger one passes the larger layer's fans.
[[nodiscard]] double init_stddev(Init init, std::size_t fan_in, std::size_t fan_out) noexcept;

}  // namespace ringdp::nn
