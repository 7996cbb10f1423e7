// Softmax cross-entropy against values worked out by hand.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/error.hpp"
#include "ringdp/nn/loss.hpp"

using ringdp::test::all_ranks;
using namespace ringdp::nn;

namespace {

// Three samples of three classes, chosen so the answers have closed forms:
//  column 0: z = (1, 2, 3), label 2: loss = log(1 + e^-1 + e^-2) = 0.4076059644443804,
//            softmax = (e, e^2, e^3) / (e + e^2 + e^3), argmax 2 = label: correct;
//  column 1: z = (0, 0, 0), label 0: loss = log 3, softmax = 1/3 each, the tie goes to
//            the lowest index 0 = label: correct;
//  column 2: z = (5, 0, 0), label 1: loss = log(e^5 + 2) = 5.013385901721449, wrong.
Matrix<double> hand_logits() {
  Matrix<double> z(3, 3);
  z << 1, 0, 5,  //
      2, 0, 0,   //
      3, 0, 0;
  return z;
}
const std::vector<std::int32_t> kHandLabels = {2, 0, 1};
constexpr double kLoss0 = 0.4076059644443804;
const double kLoss1 = std::log(3.0);
constexpr double kLoss2 = 5.013385901721449;

}  // namespace

TEST_CASE("softmax cross-entropy matches a hand computation") {
  Matrix<double> grad;
  const LossResult r = softmax_cross_entropy<double>(hand_logits(), kHandLabels, grad);
  CHECK(all_ranks(r.count == 3 && r.correct == 2));
  CHECK(all_ranks(std::abs(r.loss_sum - (kLoss0 + kLoss1 + kLoss2)) < 1e-12));
  CHECK(all_ranks(std::abs(r.mean_loss - (kLoss0 + kLoss1 + kLoss2) / 3) < 1e-12));

  // dL/dz = (softmax - onehot) / 3 for the mean over three samples.
  const double e = std::exp(1.0);
  const double s0 = e + e * e + e * e * e;
  const double s2 = std::exp(5.0) + 2.0;
  Matrix<double> expected(3, 3);
  expected << e / s0, 1.0 / 3 - 1, std::exp(5.0) / s2,  //
      e * e / s0, 1.0 / 3, 1.0 / s2 - 1,                //
      e * e * e / s0 - 1, 1.0 / 3, 1.0 / s2;
  expected /= 3.0;
  CHECK(all_ranks((grad - expected).cwiseAbs().maxCoeff() < 1e-15));
}

TEST_CASE("padded batch: only the first `real` columns count") {
  Matrix<double> z(3, 4);
  z.leftCols(3) = hand_logits();
  z.col(3) << 100, -7, 3;
  // The padding's label is garbage on purpose: it must not be looked at.
  const std::vector<std::int32_t> labels = {2, 0, 1, -1};
  Matrix<double> grad;
  const LossResult r = softmax_cross_entropy<double>(z, labels, grad, 2);
  CHECK(all_ranks(r.count == 2 && r.correct == 2));
  CHECK(all_ranks(std::abs(r.mean_loss - (kLoss0 + kLoss1) / 2) < 1e-12));
  CHECK(all_ranks(grad.rightCols(2).isZero(0.0)));
  // Column 1's gradient: (1/3 - 1, 1/3, 1/3) / 2.
  CHECK(all_ranks(std::abs(grad(0, 1) - (1.0 / 3 - 1) / 2) < 1e-15));

  // A global denominator (a trainer whose ranks hold 2 and 4 real samples) scales the
  // gradient, not the reported loss.
  Matrix<double> grad6;
  softmax_cross_entropy<double>(z, labels, grad6, 2, 6.0);
  CHECK(all_ranks((grad6 * 6.0 - grad * 2.0).cwiseAbs().maxCoeff() < 1e-15));

  // No real sample at all: zero loss, zero gradient, no division by zero.
  Matrix<double> grad0;
  const LossResult none = softmax_cross_entropy<double>(z, labels, grad0, 0);
  CHECK(all_ranks(none.count == 0 && none.mean_loss == 0.0 && grad0.isZero(0.0)));
}

TEST_CASE("softmax cross-entropy is stable for huge logits (float)") {
  Matrix<float> z(2, 3);
  z << 1e4f, -1e4f, 50000.0f,  //
      1e4f, 0.0f, 0.0f;
  const std::vector<std::int32_t> labels = {0, 0, 1};
  Matrix<float> grad;
  const LossResult r = softmax_cross_entropy<float>(z, labels, grad);
  // Column 0: equal logits, loss log 2. Column 1: z = (-1e4, 0), label 0: loss 1e4.
  // Column 2: z = (5e4, 0), label 1: loss 5e4. A naive exp() would give inf/inf = NaN.
  const double expected = (std::log(2.0) + 1e4 + 5e4) / 3;
  CHECK(all_ranks(std::isfinite(r.mean_loss) && std::abs(r.mean_loss - expected) < 1e-3));
  CHECK(all_ranks(grad.allFinite()));
  CHECK(all_ranks(std::abs(grad(0, 0) - (0.5f - 1.0f) / 3) < 1e-7f));
  CHECK(all_ranks(r.correct == 1));  // column 0 (tie -> index 0) only
}

TEST_CASE("softmax cross-entropy rejects bad labels and counts") {
  const Matrix<double> z = hand_logits();
  Matrix<double> grad;
  const auto throws = [&](std::vector<std::int32_t> labels, std::size_t real, double den) {
    try {
      softmax_cross_entropy<double>(z, labels, grad, real, den);
    } catch (const ringdp::InvalidArgument&) {
      return true;
    }
    return false;
  };
  CHECK(all_ranks(throws({2, 0, 3}, 3, 0)));   // label == classes
  CHECK(all_ranks(throws({2, -1, 1}, 3, 0)));  // negative label
  CHECK(all_ranks(throws({2, 0}, 2, 0)));      // fewer labels than columns
  CHECK(all_ranks(throws({2, 0, 1}, 4, 0)));   // real > batch
  CHECK(all_ranks(throws({2, 0, 1}, 3, -1)));  // negative denominator
  CHECK(all_ranks(!throws({2, 0, 1}, 3, 0)));
}
