#include "ringdp/parallel/split_dense.hpp"

#include <fmt/format.h>

#include <chrono>
#include <new>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/error.hpp"

namespace ringdp::parallel {

template <class T>
SplitDense<T>::SplitDense(const Communicator& tensor, std::size_t inputs, std::size_t outputs,
                          Slice rows, Slice cols, nn::Init init, Algorithm algorithm)
    : inputs_(inputs),
      outputs_(outputs),
      rows_(rows),
      cols_(cols),
      tensor_(tensor),
      init_(init),
      algorithm_(algorithm) {}

template <class T>
std::vector<nn::TensorShape> SplitDense<T>::parameter_shapes() const {
  return {{"weight", rows_.size, cols_.size}, {"bias", rows_.size, 1}};
}

template <class T>
void SplitDense<T>::bind(std::span<T> parameters, std::span<T> gradients) {
  const std::size_t nw = rows_.size * cols_.size;
  const std::size_t n = nw + rows_.size;
  if (parameters.size() != n || gradients.size() != n) {
    throw InvalidArgument(fmt::format("{}::bind: slice of {} / {} elements, expected {}",
                                      this->kind(), parameters.size(), gradients.size(), n));
  }
  const auto r = static_cast<Eigen::Index>(rows_.size);
  const auto c = static_cast<Eigen::Index>(cols_.size);
  new (&w_) Eigen::Map<nn::Matrix<T>>(parameters.data(), r, c);
  new (&b_) Eigen::Map<nn::Vector<T>>(parameters.data() + nw, r);
  new (&dw_) Eigen::Map<nn::Matrix<T>>(gradients.data(), r, c);
  new (&db_) Eigen::Map<nn::Vector<T>>(gradients.data() + nw, r);
}

template <class T>
void SplitDense<T>::initialize(nn::NormalGenerator& rng) {
  // nn::Dense draws one normal per weight, column by column; the draws outside this
  // rank's block are skipped, not kept.
  const double stddev = nn::init_stddev(init_, inputs_, outputs_);
  rng.skip(cols_.offset * outputs_);
  for (std::size_t j = 0; j < cols_.size; ++j) {
    rng.skip(rows_.offset);
    for (std::size_t i = 0; i < rows_.size; ++i) {
      w_(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
          static_cast<T>(stddev * rng.normal());
    }
    rng.skip(outputs_ - rows_.end());
  }
  rng.skip((inputs_ - cols_.end()) * outputs_);
  b_.setZero();
}

template <class T>
void SplitDense<T>::allreduce_sum(nn::Matrix<T>& m) const {
  const auto start = std::chrono::steady_clock::now();
  allreduce<T>(tensor_, std::span<T>(m.data(), static_cast<std::size_t>(m.size())), ReduceOp::Sum,
               algorithm_);
  communication_seconds_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template class SplitDense<float>;
template class SplitDense<double>;

}  // namespace ringdp::parallel
