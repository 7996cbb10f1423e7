#pragma once
/// \file
/// A feed-forward stack of layers over one flat parameter arena and one flat gradient arena.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ringdp/nn/init.hpp"
#include "ringdp/nn/layer.hpp"
#include "ringdp/nn/thread_pool.hpp"
#include "ringdp/nn/types.hpp"

namespace ringdp::nn {

template <class T>
class Dense;

/// Called by Sequential::backward() as soon as layer `layer`'s parameter gradients are
/// final, with that layer's range in the gradient arena (empty for layers without
/// parameters). Calls come last layer first; because the arena stores the last layer first
/// (see Sequential), the ranges arrive in increasing offset order and tile the arena from
/// 0: after the call for `layer`, the prefix [0, range.end()) is complete.
using BackwardHook = std::function<void(std::size_t layer, ArenaRange range)>;

/// What one forward pass leaves for its backward: where its input is and every layer's
/// output. Sequential keeps one of its own for forward(x) / backward(dlogits); a caller
/// with several batches in flight at once (a pipeline stage's micro-batches) keeps one per
/// batch and passes it to forward(x, cache) / backward(dlogits, cache, ...). Its buffers
/// keep their capacity, so a steady batch size allocates nothing. Filled and read by
/// Sequential only.
template <class T>
struct ForwardCache {
  Matrix<T> input;                 ///< x when copied or evaluated (see forward())
  std::vector<Matrix<T>> outputs;  ///< outputs[i]: layer i's output (empty when fused away)
  const T* input_data = nullptr;   ///< the pass's input: `input` or the caller's storage
  Eigen::Index input_rows = 0;
  Eigen::Index input_cols = 0;
  Eigen::Index input_stride = 0;
  bool done = false;  ///< a forward pass filled this cache
};

/// Memory for a gradient arena from a GradientAllocator: `data` holds the requested number
/// of elements, aligned to 64 bytes; `owner` keeps it alive for as long as the model uses it.
template <class T>
struct ArenaMemory {
  T* data = nullptr;
  std::shared_ptr<void> owner;
};

/// Where a model's gradient arena lives (see Sequential::move_gradients()): called with the
/// element count, returns the memory. An empty function means ordinary aligned memory. The
/// hook lets a caller that knows more than nn (the trainer: memory that the other ranks of
/// a node can reach) place the arena without nn knowing how.
template <class T>
using GradientAllocator = std::function<ArenaMemory<T>(std::size_t count)>;

/// A model: layers applied in order, parameters in one flat arena.
///
/// Arena layout: the LAST layer's parameters come FIRST. Backward runs from the last layer
/// to the first, so with this order the finished part of the gradient arena is always a
/// prefix [0, k) that grows as backward proceeds. A gradient reducer can then cut the arena
/// into buckets from offset 0 and start reducing bucket j as soon as the prefix reaches its
/// end, with no bookkeeping of holes. Within a layer, tensors follow parameter_shapes()
/// (Dense: weight, then bias). The parameter arena uses the same offsets as the gradient
/// arena, so optimizers work element-wise on both, and broadcast/allreduce/checkpoints see
/// one contiguous buffer each.
///
/// The arenas are allocated once in the constructor and never move (also not when the
/// model is moved), so spans from parameters()/gradients() stay valid for the model's life,
/// except that move_gradients() puts the gradient arena elsewhere when asked to.
/// Not thread-safe; every rank holds its own replica and calls the methods locally (no MPI).
///
/// Kernels: a Dense followed by a ReLU runs as one pass (Activation::ReLU: the bias and the
/// ReLU applied to the product's result block while it is in cache, and in backward the
/// ReLU's mask applied to the next Dense's input gradient the same way), so the ReLU's
/// input is never stored. With a ThreadPool (set_thread_pool()) every kernel is split among
/// its threads, deterministically for a fixed thread count (see Dense).
///
/// One data-parallel step, in outline (the reducer and schedule belong to the trainer):
/// \code
///   auto model = Sequential<float>::from_spec("784-512-256-10");
///   model.initialize(seed);                              // same bits on every rank
///   Sgd<float> sgd(model.parameter_count(), {.momentum = 0.9});
///   const Matrix<float>& logits = model.forward(x);      // x: 784 x batch
///   LossResult r = softmax_cross_entropy<float>(logits, labels, dlogits, real);
///   model.backward(dlogits, [&](std::size_t, ArenaRange done) {
///     reducer.gradients_ready_up_to(done.end());         // prefix [0, end) is final
///   });
///   reducer.wait_all();                                  // averaged gradients
///   sgd.step(model.parameters(), model.gradients(), lr);
/// \endcode
template <class T>
class Sequential {
 public:
  /// Takes the layers in forward order. Throws InvalidArgument when `layers` is empty,
  /// holds a null pointer, or a layer's input size differs from the previous output size.
  /// Parameters are zero until initialize().
  explicit Sequential(std::vector<std::unique_ptr<Layer<T>>> layers);

  /// An MLP from a spec such as "784-512-256-10" (see parse_model_spec()): Dense layers
  /// with ReLU between them, He initialisation for the hidden Dense layers and Xavier for
  /// the output layer (which feeds the softmax). Throws InvalidArgument on a bad spec.
  [[nodiscard]] static Sequential from_spec(std::string_view spec);

  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;
  Sequential(const Sequential&) = delete;
  Sequential& operator=(const Sequential&) = delete;

  /// Deterministic initialisation: one NormalGenerator(seed) walks the layers in forward
  /// order. The same seed gives the same bits on every rank and run; a float and a double
  /// model with the same seed differ only by rounding. Gradients are zeroed.
  void initialize(std::uint64_t seed);
  /// Same, drawing from `rng` where it stands: a model holding only some layers of a
  /// larger one (a pipeline stage) draws what the larger model draws for them once `rng`
  /// has skipped the draws of the layers before (NormalGenerator::skip()).
  void initialize(NormalGenerator& rng);

  /// Runs the model on `x` (input_size() x batch, one sample per column) and returns the
  /// logits (output_size() x batch), valid until the next forward(). `x` is not copied:
  /// the first layer's backward reads it again, so it must stay alive and unchanged until
  /// backward() (or the next forward()). A Matrix<T>, an Eigen::Map over the caller's
  /// buffer, a Ref, or a block of whole columns of one is used in place; an expression Eigen
  /// must evaluate first (Matrix::Zero(...), a cast, a product) is evaluated into a buffer
  /// of the model. A temporary Matrix is refused at compile time (it would be gone before
  /// backward()). Throws InvalidArgument on a wrong row count or an empty batch.
  template <class Derived>
  const Matrix<T>& forward(const Eigen::MatrixBase<Derived>& x) {
    if constexpr (kUsableInPlace<Derived>) {
      return forward_in_place(x, cache_);
    } else {
      cache_.input = x;
      return forward_in_place(cache_.input, cache_);
    }
  }
  const Matrix<T>& forward(Matrix<T>&& x) = delete;
  /// forward() keeping what backward needs in `cache` instead of in the model. `x` is
  /// copied into the cache (the caller may reuse its memory at once).
  const Matrix<T>& forward(const ConstMatrixRef<T>& x, ForwardCache<T>& cache);

  /// Back-propagates dL/dlogits (same shape as the last forward()'s logits), overwriting
  /// the gradient arena (no zeroing needed between steps). `hook`, if set, is called for
  /// every layer right after its gradients are final (see BackwardHook); it runs on the
  /// calling thread and should only hand the range on (e.g. to a reducer). Throws
  /// InvalidArgument when called without a matching forward().
  void backward(const ConstMatrixRef<T>& dlogits, const BackwardHook& hook = {});
  /// backward() of the forward pass that filled `cache`. When `dinput` is not null, the
  /// gradient of the loss with respect to that pass's input is written there too (a
  /// pipeline stage sends it to the stage before); backward() skips it.
  void backward(const ConstMatrixRef<T>& dlogits, ForwardCache<T>& cache, const BackwardHook& hook,
                Matrix<T>* dinput = nullptr);

  /// The compute threads of every layer's kernels (nullptr, the default: the calling thread
  /// only); see ThreadPool. The pool must outlive its use by the model.
  void set_thread_pool(ThreadPool* pool) noexcept;
  [[nodiscard]] ThreadPool* thread_pool() const noexcept { return pool_; }

  /// The flat parameter arena (all parameters, last layer first).
  [[nodiscard]] std::span<T> parameters() noexcept { return parameters_; }
  [[nodiscard]] std::span<const T> parameters() const noexcept { return parameters_; }
  /// The flat gradient arena, same layout as parameters().
  [[nodiscard]] std::span<T> gradients() noexcept { return gradients_; }
  [[nodiscard]] std::span<const T> gradients() const noexcept { return gradients_; }
  /// Moves the gradient arena into memory from `allocate` (ordinary aligned memory when it
  /// is empty), its contents copied, and rebinds the layers; the old memory is released.
  /// Spans from gradients() taken before are invalid afterwards. Throws InvalidArgument
  /// when `allocate` returns null or memory not aligned to 64 bytes (the model is then
  /// unchanged), and whatever `allocate` throws.
  void move_gradients(const GradientAllocator<T>& allocate);

  /// Number of parameters (= arena elements).
  [[nodiscard]] std::size_t parameter_count() const noexcept { return parameters_.size(); }

  [[nodiscard]] std::size_t input_size() const noexcept;
  [[nodiscard]] std::size_t output_size() const noexcept;
  [[nodiscard]] std::size_t layer_count() const noexcept { return layers_.size(); }
  [[nodiscard]] Layer<T>& layer(std::size_t i) { return *layers_.at(i); }
  [[nodiscard]] const Layer<T>& layer(std::size_t i) const { return *layers_.at(i); }
  /// Layer `i`'s slice of the arenas (empty for layers without parameters).
  [[nodiscard]] ArenaRange layer_range(std::size_t i) const { return ranges_.at(i); }
  /// Every parameter tensor with its name, shape and offset, in arena order.
  [[nodiscard]] const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }

 private:
  // Usable in place: direct access to column-major T storage with unit inner stride.
  template <class Derived>
  static constexpr bool kUsableInPlace = std::is_same_v<typename Derived::Scalar, T> &&
                                         (static_cast<unsigned>(Derived::Flags) &
                                          Eigen::DirectAccessBit) != 0 &&
                                         (static_cast<unsigned>(Derived::Flags) &
                                          Eigen::RowMajorBit) == 0 &&
                                         Derived::InnerStrideAtCompileTime == 1;
  const Matrix<T>& forward_in_place(const ConstMatrixRef<T>& x, ForwardCache<T>& cache);
  // What layer i reads in forward and backward: the pass's input (read again by the first
  // layer's backward) or the previous layer's output.
  [[nodiscard]] static ConstMatrixRef<T> layer_input(const ForwardCache<T>& cache, std::size_t i);
  // Points every layer at its slices of parameters_ and gradients_.
  void bind_layers();

  std::vector<std::unique_ptr<Layer<T>>> layers_;
  // Fusion plan, fixed at construction: dense_[i] is layer i as a Dense (else null);
  // fused_relu_[i] marks a ReLU right after a Dense, which that Dense's forward applies in
  // its output pass (the Dense's own output is never stored) and, when the layer after the
  // ReLU is a Dense too, that layer's backward_input() applies in its output pass.
  std::vector<Dense<T>*> dense_;
  std::vector<char> fused_relu_;
  ThreadPool* pool_ = nullptr;
  std::vector<ArenaRange> ranges_;   // per layer, in layer order
  std::vector<TensorInfo> tensors_;  // in arena order
  // Arena storage, aligned to kArenaAlignment bytes. Not a std::vector: the buffers must
  // never reallocate, since the layers' maps point into them. Aligned because Eigen's
  // vectorised kernels peel a different number of leading elements for a different
  // address modulo the vector width, which changes the order of the additions and so the
  // rounding: with malloc's 16-byte alignment, the same model on the same data could give
  // results differing in the last bits from run to run and between processes.
  static constexpr std::size_t kArenaAlignment = 64;  // bytes: a cache line, >= any SIMD width
  struct ArenaDelete {
    void operator()(T* p) const noexcept;
  };
  // n elements (at least one), zeroed, aligned to kArenaAlignment.
  static std::unique_ptr<T[], ArenaDelete> allocate_arena(std::size_t n);
  std::unique_ptr<T[], ArenaDelete> parameter_storage_;
  std::shared_ptr<void> gradient_storage_;  // the gradient arena's owner (move_gradients())
  std::span<T> parameters_;
  std::span<T> gradients_;
  // Per-batch buffers, kept between steps so a steady batch size allocates nothing:
  // cache_ is what forward(x) leaves for backward(dlogits); deltas_[i] is
  // dL/d(input of layer i) for i >= 1, needed only during one backward.
  ForwardCache<T> cache_;
  std::vector<Matrix<T>> deltas_;
};

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace ringdp::nn
