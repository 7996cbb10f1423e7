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

// Value-initialised (zero) so that a model is well defined before initialize().
template <class T>
std::unique_ptr<T[], typename Sequential<T>::ArenaDelete> Sequential<T>::allocate_arena(
    std::size_t n) {
  T* p = new (std::align_val_t{kArenaAlignment}) T[std::max<std::size_t>(n, 1)]();
  return std::unique_ptr<T[], ArenaDelete>(p);
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

  parameter_storage_ = allocate_arena(offset);
  auto gradients = allocate_arena(offset);
  parameters_ = std::span<T>(parameter_storage_.get(), offset);
  gradients_ = std::span<T>(gradients.get(), offset);
  gradient_storage_ = std::move(gradients);
  bind_layers();
  deltas_.resize(layers_.size());
  dense_.resize(layers_.size(), nullptr);
  fused_relu_.resize(layers_.size(), 0);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    dense_[i] = dynamic_cast<Dense<T>*>(layers_[i].get());
    fused_relu_[i] = i > 0 && dense_[i - 1] != nullptr &&
                     dynamic_cast<const ReLU<T>*>(layers_[i].get()) != nullptr;
  }
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
    auto arena = allocate_arena(n);
    memory.data = arena.get();
    memory.owner = std::move(arena);
  }
  std::copy(gradients_.begin(), gradients_.end(), memory.data);
  gradients_ = std::span<T>(memory.data, n);
  gradient_storage_ = std::move(memory.owner);  // releases the old arena
  bind_layers();
}

template <class T>
void Sequential<T>::set_thread_pool(ThreadPool* pool) noexcept {
  pool_ = pool;
  for (auto& layer : layers_) layer->set_thread_pool(pool);
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
  initialize(rng);
}

template <class T>
void Sequential<T>::initialize(NormalGenerator& rng) {
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
ConstMatrixRef<T> Sequential<T>::layer_input(const ForwardCache<T>& cache, std::size_t i) {
  if (i > 0) return cache.outputs[i - 1];
  return Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>(
      cache.input_data, cache.input_rows, cache.input_cols,
      Eigen::OuterStride<>(cache.input_stride));
}

template <class T>
const Matrix<T>& Sequential<T>::forward(const ConstMatrixRef<T>& x, ForwardCache<T>& cache) {
  cache.input = x;  // no allocation when the batch shape is unchanged
  return forward_in_place(cache.input, cache);
}

template <class T>
const Matrix<T>& Sequential<T>::forward_in_place(const ConstMatrixRef<T>& x,
                                                 ForwardCache<T>& cache) {
  if (static_cast<std::size_t>(x.rows()) != input_size() || x.cols() == 0) {
    throw InvalidArgument(
        fmt::format("Sequential::forward: input is {} x {}, expected {} x batch "
                    "(features x samples, batch > 0)",
                    x.rows(), x.cols(), input_size()));
  }
  cache.done = false;
  cache.input_data = x.data();
  cache.input_rows = x.rows();
  cache.input_cols = x.cols();
  cache.input_stride = x.outerStride();
  const std::size_t n = layers_.size();
  std::vector<Matrix<T>>& out = cache.outputs;
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (fused_relu_[i]) continue;  // done by the Dense before it
    if (dense_[i] != nullptr && i + 1 < n && fused_relu_[i + 1]) {
      dense_[i]->forward(layer_input(cache, i), out[i + 1], Activation::ReLU);
      out[i].resize(0, 0);  // never stored; nothing may read a stale one
    } else {
      layers_[i]->forward(layer_input(cache, i), out[i]);
    }
  }
  cache.done = true;
  return out.back();
}

template <class T>
void Sequential<T>::backward(const ConstMatrixRef<T>& dlogits, const BackwardHook& hook) {
  backward(dlogits, cache_, hook, nullptr);
}

template <class T>
void Sequential<T>::backward(const ConstMatrixRef<T>& dlogits, ForwardCache<T>& cache,
                             const BackwardHook& hook, Matrix<T>* dinput) {
  if (!cache.done || dlogits.rows() != cache.outputs.back().rows() ||
      dlogits.cols() != cache.outputs.back().cols()) {
    throw InvalidArgument(fmt::format(
        "Sequential::backward: gradient is {} x {}, but the forward pass gave {} x {} logits",
        dlogits.rows(), dlogits.cols(), cache.done ? cache.outputs.back().rows() : 0,
        cache.done ? cache.outputs.back().cols() : 0));
  }
  std::vector<Matrix<T>>& outputs = cache.outputs;
  // deltas_[i] holds dL/d(input of layer i); layer i reads the gradient of its output from
  // deltas_[i + 1] (or dlogits for the last layer). A Dense whose input comes from a fused
  // ReLU writes the ReLU's input gradient (deltas_[i - 1]) at once, with the mask applied
  // in its product's output pass; the ReLU then has nothing left to do. The first layer
  // computes no input gradient unless the caller asks for it (`dinput`), which saves its
  // largest GEMM. A Dense hands its parameter
  // gradients to the hook before it computes its input gradient, so a reducer can start on
  // them meanwhile.
  const std::size_t n = layers_.size();
  for (std::size_t i = n; i-- > 0;) {
    const ConstMatrixRef<T> dy = i + 1 == n ? dlogits : ConstMatrixRef<T>(deltas_[i + 1]);
    if (Dense<T>* dense = dense_[i]) {
      dense->backward_parameters(layer_input(cache, i), dy);
      if (hook) hook(i, ranges_[i]);
      if (i > 0 && fused_relu_[i - 1]) {
        dense->backward_input(dy, deltas_[i - 1], &outputs[i - 1]);
      } else if (i > 0) {
        dense->backward_input(dy, deltas_[i]);
      } else if (dinput != nullptr) {
        dense->backward_input(dy, *dinput);
      }
      continue;
    }
    const bool done_by_next = fused_relu_[i] && i + 1 < n && dense_[i + 1] != nullptr;
    if (!done_by_next) {
      // A layer without a fused path (and a fused ReLU with no Dense after it): its own
      // backward. A fused ReLU's input was never stored; ReLU reads only its output.
      const ConstMatrixRef<T> x =
          fused_relu_[i] ? ConstMatrixRef<T>(outputs[i]) : layer_input(cache, i);
      layers_[i]->backward(x, outputs[i], dy, i == 0 ? dinput : &deltas_[i]);
    }
    if (hook) hook(i, ranges_[i]);
  }
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace ringdp::nn
