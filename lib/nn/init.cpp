#include "ringdp/nn/init.hpp"

#include <cmath>
#include <numbers>

namespace ringdp::nn {

double NormalGenerator::uniform() {
  // The top 53 bits of a 64-bit draw fill a double's mantissa exactly; adding one half-step
  // moves the result off 0 into (0, 1), so log() below never sees 0.
  const std::uint64_t bits = engine_() >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

double NormalGenerator::normal() {
  // Box-Muller: two uniforms give two independent standard normals; the second is kept
  // for the next call. Only std::log/sqrt/cos/sin of one libm are involved, so every rank
  // of a job (same binary, same libm) draws the same bits.
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

void NormalGenerator::skip(std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) static_cast<void>(normal());
}

double init_stddev(Init init, std::size_t fan_in, std::size_t fan_out) noexcept {
  const auto in = static_cast<double>(fan_in);
  const auto out = static_cast<double>(fan_out);
  return init == Init::He ? std::sqrt(2.0 / in) : std::sqrt(2.0 / (in + out));
}

}  // namespace ringdp::nn
