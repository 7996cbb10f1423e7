#include "ringdp/nn/sequential.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <string>
#include <utility>

#include "ringdp/error.hpp"
#include "ringdp/nn/activations.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/model_spec.hpp"

namespace ringdp::nn {

template <class T>
void Sequential<T>::ArenaDelete::operator()(T* p) const noexcept {
  ::operator delete[](p, std::align_val_t{kArenaAlignment});
}

template <class T>
Sequential<T>::Sequential(std::vector<std::unique_ptr<Layer<T>>> layers)
    : layers_(std::move(layers)) {
  if (layers_.empty()) throw InvalidArgument("Sequential model needs at least one layer");
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (!layers_[i]) throw InvalidArgument(fmt::format("Sequential: layer {} is null", i));
    if (i > 0 && layers_[i]->input_size() != layers_[i - 1]->output_size()) {
      throw InvalidArgument(fmt::format(
          "Sequential: layer {} ({}) takes {} inputs but layer {} ({}) gives {} outputs", i,
          layers_[i]->kind(), layers_[i]->input_size(), i - 1, layers_[i - 1]->kind(),
          layers_[i - 1]->output_size()));
    }
  }

  // Lay the layers out last first (see the class comment): walking i downwards while the
  // offset grows means the gradient prefix [0, k) is what backward has finished.
  ranges_.resize(layers_.size());
  std::size_t offset = 0;
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const std::size_t begin = offset;
    for (const TensorShape& shape : layers_[i]->parameter_shapes()) {
      tensors_.push_back({fmt::format("layer{}.{}.{}", i, layers_[i]->kind(), shape.name), offset,
                          shape.rows, shape.cols});
      offset += shape.rows * shape.cols;
    }
    ranges_[i] = {begin, offset - begin};
  }

  // Value-initialised (zero) so that a model is well defined before initialize().
  auto allocate = [](std::size_t n) {
    T* p = new (std::align_val_t{kArenaAlignment}) T[std::max<std::size_t>(n, 1)]();
    return std::unique_ptr<T[], ArenaDelete>(p);
  };
  parameter_storage_ = allocate(offset);
  auto gradients = allocate(offset);
  parameters_ = std::span<T>(parameter_storage_.get(), offset);
  gradients_ = std::span<T>(gradients.get(), offset);
  gradient_storage_ = std::move(gradients);
  bind_layers();
  outputs_.resize(layers_.size());
  deltas_.resize(layers_.size());
}

template <class T>
void Sequential<T>::bind_layers() {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->bind(parameters_.subspan(ranges_[i].offset, ranges_[i].size),
                     gradients_.subspan(ranges_[i].offset, ranges_[i].size));
  }
}

template <class T>
void Sequential<T>::move_gradients(const GradientAllocator<T>& allocate) {
  const std::size_t n = gradients_.size();
  ArenaMemory<T> memory;
  if (allocate) {
    memory = allocate(n);
    if (memory.data == nullptr ||
        reinterpret_cast<std::uintptr_t>(memory.data) % kArenaAlignment != 0) {
      throw InvalidArgument(fmt::format(
          "Sequential::move_gradients: the allocator gave {} for {} elements, expected memory "
          "aligned to {} bytes",
          static_cast<const void*>(memory.data), n, kArenaAlignment));
    }
  } else {
    T* p = new (std::align_val_t{kArenaAlignment}) T[std::max<std::size_t>(n, 1)]();
    memory.owner = std::unique_ptr<T[], ArenaDelete>(p);
    memory.data = p;
  }
  std::copy(gradients_.begin(), gradients_.end(), memory.data);
  gradients_ = std::span<T>(memory.data, n);
  gradient_storage_ = std::move(memory.owner);  // releases the old arena
  bind_layers();
}

template <class T>
Sequential<T> Sequential<T>::from_spec(std::string_view spec) {
  const std::vector<std::size_t> widths = parse_model_spec(spec);
  std::vector<std::unique_ptr<Layer<T>>> layers;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    const bool last = i + 2 == widths.size();
    layers.push_back(
        std::make_unique<Dense<T>>(widths[i], widths[i + 1], last ? Init::Xavier : Init::He));
    if (!last) layers.push_back(std::make_unique<ReLU<T>>(widths[i + 1]));
  }
  return Sequential(std::move(layers));
}

template <class T>
void Sequential<T>::initialize(std::uint64_t seed) {
  NormalGenerator rng(seed);
  for (auto& layer : layers_) layer->initialize(rng);
  std::fill(gradients_.begin(), gradients_.end(), T(0));
}

template <class T>
std::size_t Sequential<T>::input_size() const noexcept {
  return layers_.front()->input_size();
}

template <class T>
std::size_t Sequential<T>::output_size() const noexcept {
  return layers_.back()->output_size();
}

template <class T>
const Matrix<T>& Sequential<T>::forward(const ConstMatrixRef<T>& x) {
  if (static_cast<std::size_t>(x.rows()) != input_size() || x.cols() == 0) {
    throw InvalidArgument(
        fmt::format("Sequential::forward: input is {} x {}, expected {} x batch "
                    "(features x samples, batch > 0)",
                    x.rows(), x.cols(), input_size()));
  }
  input_ = x;  // no allocation when the batch shape is unchanged
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (i == 0) {
      layers_[i]->forward(input_, outputs_[i]);
    } else {
      layers_[i]->forward(outputs_[i - 1], outputs_[i]);
    }
  }
  forward_done_ = true;
  return outputs_.back();
}

template <class T>
void Sequential<T>::backward(const ConstMatrixRef<T>& dlogits, const BackwardHook& hook) {
  if (!forward_done_ || dlogits.rows() != outputs_.back().rows() ||
      dlogits.cols() != outputs_.back().cols()) {
    throw InvalidArgument(fmt::format(
        "Sequential::backward: gradient is {} x {}, but the last forward gave {} x {} logits",
        dlogits.rows(), dlogits.cols(), outputs_.back().rows(), outputs_.back().cols()));
  }
  // deltas_[i] holds dL/d(input of layer i). Layer i reads the gradient of its output from
  // deltas_[i + 1] (or dlogits for the last layer); the first layer computes no input
  // gradient, which saves its largest GEMM.
  const std::size_t n = layers_.size();
  for (std::size_t i = n; i-- > 0;) {
    const Matrix<T>& x = i == 0 ? input_ : outputs_[i - 1];
    Matrix<T>* dx = i == 0 ? nullptr : &deltas_[i];
    if (i + 1 == n) {
      layers_[i]->backward(x, outputs_[i], dlogits, dx);
    } else {
      layers_[i]->backward(x, outputs_[i], deltas_[i + 1], dx);
    }
    if (hook) hook(i, ranges_[i]);
  }
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace ringdp::nn
