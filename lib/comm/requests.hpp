#pragma once
/// \file
/// The requests one call of a collective has in flight, owned so that an exception
/// leaves none of them behind: no receive still writing into ringdp's scratch or the
/// caller's buffer, no send still reading it, no message of the call left unmatched on the
/// communicator for a later collective to receive. Internal to the library (include as
/// "comm/requests.hpp"); requests.cpp explains the protocol and why it is safe.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <memory>

#include "ringdp/comm/communicator.hpp"

namespace ringdp::detail {

/// A growable array that keeps its first N elements inline, so that a collective posting
/// a request or two (recursive doubling's exchanges) pays for no allocation. For trivially
/// copyable T. Not copyable, not movable (the inline storage is its own address).
template <class T, std::size_t N>
class InlineArray {
 public:
  InlineArray() noexcept = default;
  InlineArray(const InlineArray&) = delete;
  InlineArray& operator=(const InlineArray&) = delete;

  /// Makes room for one more element, so that the next append cannot throw.
  void reserve_one() {
    if (size_ < capacity_) return;
    auto bigger = std::make_unique<T[]>(2 * capacity_);
    std::copy(data_, data_ + size_, bigger.get());
    heap_ = std::move(bigger);
    data_ = heap_.get();
    capacity_ *= 2;
  }
  /// Appends after reserve_one().
  void append(const T& value) noexcept { data_[size_++] = value; }

  [[nodiscard]] T& operator[](std::size_t i) noexcept { return data_[i]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  T inline_[N];
  std::unique_ptr<T[]> heap_;
  T* data_ = inline_;
  std::size_t size_ = 0;
  std::size_t capacity_ = N;
};

/// The requests of one call of a collective on `comm`, posted and waited through this
/// object (waits are watched by the stall inspector, like detail::wait()).
///
/// Point-to-point messages all carry the tag and the datatype given at construction, and
/// every message the call sends is counted per destination, blocking sends included. When
/// the call unwinds (an exception: an MpiError from a wait, a failed allocation) the
/// destructor settles everything before the buffers go: receives are cancelled or
/// completed, sends completed, non-blocking collectives completed, and the ranks exchange
/// how many messages each sent the other, so that every message of the call is received
/// (unwanted ones into a discard buffer) and the communicator is left clean for the next
/// collective. That needs every rank of the communicator to unwind from the same call; a
/// rank whose peers do not settle within the settle time aborts the job with a message
/// naming itself, the call and what was left (it must not return while MPI may still write
/// into its buffers, and must not hang). Never throws from the destructor.
///
/// One object per call, on the thread running the call; indices count from 0 per kind.
/// Declare it after the buffers its requests use (locals of the call), so that it is
/// destroyed, and settles, before they are.
class Requests {
 public:
  /// Tag of the settle handshake (requests.cpp); reserved on ringdp's communicators.
  static constexpr int kSettleTag = 0x5354;  // "ST"

  /// For a call that posts point-to-point messages, all with `tag` and `type`.
  Requests(const Communicator& comm, int tag, MPI_Datatype type) noexcept;
  /// For a call that posts only non-blocking collectives (MPI_I*): they are completed on
  /// unwinding (they cannot be cancelled), and there is nothing to exchange.
  explicit Requests(const Communicator& comm) noexcept;
  ~Requests();

  Requests(const Requests&) = delete;
  Requests& operator=(const Requests&) = delete;

  /// MPI_Isend of `count` elements to `dest`; waited by wait_sends() or wait_all().
  void isend(const void* data, int count, int dest);
  /// MPI_Send (blocking) of `count` elements to `dest`, counted like isend().
  void send(const void* data, int count, int dest);
  /// MPI_Irecv of at most `count` elements from `source`; returns its index for wait_recv().
  std::size_t irecv(void* data, int count, int source);
  /// A slot for one non-blocking collective: pass it to MPI_I*; valid until the next call
  /// on this object. Waited by wait_all().
  [[nodiscard]] MPI_Request* collective();

  /// Sends posted so far (the `end` of wait_sends()).
  [[nodiscard]] std::size_t sends_posted() const noexcept { return sends_.size(); }
  /// Receives posted so far (the index the next irecv() returns).
  [[nodiscard]] std::size_t recvs_posted() const noexcept { return recvs_.size(); }

  /// Completes receive `index`. Throws MpiError.
  void wait_recv(std::size_t index);
  /// Completes every send posted before send number `end`. Throws MpiError.
  void wait_sends(std::size_t end);
  /// Completes everything posted so far. Throws MpiError.
  void wait_all();

 private:
  friend class Settlement;
  [[nodiscard]] bool pending() const noexcept;
  void settle() noexcept;

  const Communicator& comm_;
  int tag_;            // -1: collectives only
  MPI_Datatype type_;  // of every point-to-point message
  int uncaught_;       // std::uncaught_exceptions() at construction
  InlineArray<MPI_Request, 8> sends_;
  InlineArray<int, 8> send_peer_;
  InlineArray<MPI_Request, 8> recvs_;
  InlineArray<int, 8> recv_peer_;
  InlineArray<MPI_Request, 2> collectives_;
  std::size_t sends_done_ = 0;        // sends before it are complete
  std::size_t recvs_done_ = 0;        // receives before it are complete
  std::size_t collectives_done_ = 0;  // collectives before it are complete
};

}  // namespace ringdp::detail
