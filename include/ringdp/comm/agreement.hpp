#pragma once
/// \file
/// Collective agreement: a failure on one rank becomes the same Error on every rank, and
/// values that must match across ranks are checked to match, so that no rank goes on into
/// a collective the others have left (or enter with other arguments).
///
/// Every function here is collective over `comm` (all ranks call it, in the same order),
/// waits with non-blocking calls watched by the stall inspector (a rank that never arrives
/// is named, see ringdp/comm/stall.hpp), and costs one small reduction when all is well.

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"

namespace ringdp {

/// What a rank brings to an agreement when it failed: the class and the cause.
struct Failure {
  ErrorKind kind = ErrorKind::Generic;
  std::string cause;
};

/// The exception being handled, as a Failure: an Error keeps its kind and cause, any
/// other std::exception is a Generic failure with its what(). Call inside a catch block.
[[nodiscard]] Failure current_failure();

/// Each rank passes nullopt when it is fine, or its failure. If any rank failed, every rank
/// throws the failure of the lowest failing rank, as the same exception class (its kind),
/// naming that rank, with a count of the other failing ranks, and collective() == true.
/// Returns normally on every rank otherwise.
void agree(const Communicator& comm, const std::optional<Failure>& local);

/// agree() for a failure given as text alone (empty: fine); a failure is a plain Error.
void agree(const Communicator& comm, std::string_view local_error);

/// Runs `fn` on every rank, then agrees: if `fn` throws on any rank, every rank throws the
/// agreed Error (of the lowest failing rank's class); otherwise returns fn's result.
template <class Fn>
auto agree_on(const Communicator& comm, Fn&& fn) -> std::invoke_result_t<Fn&&> {
  using Result = std::invoke_result_t<Fn&&>;
  std::optional<Failure> failure;
  if constexpr (std::is_void_v<Result>) {
    try {
      std::forward<Fn>(fn)();
    } catch (const std::exception&) {
      failure = current_failure();
    }
    agree(comm, failure);
  } else {
    std::optional<Result> result;
    try {
      result.emplace(std::forward<Fn>(fn)());
    } catch (const std::exception&) {
      failure = current_failure();
    }
    agree(comm, failure);
    return std::move(*result);
  }
}

/// When agree_equal() finds ranks whose values differ, what the message is made from.
struct Disagreement {
  std::span<const std::int64_t> reference;  ///< rank 0's values
  int rank = 0;                             ///< the lowest rank whose values differ from rank 0's
  std::span<const std::int64_t> theirs;     ///< that rank's values
  std::vector<int> ranks;                   ///< every rank whose values differ from rank 0's
  /// Ranks as text: "2", "1,3", "1-4,7".
  [[nodiscard]] std::string ranks_text() const;
};

/// Checks that every rank passed the same `values` (the same number of them on every
/// rank). Returns normally when they match; otherwise every rank throws the same error of
/// class `kind`, from Disagreement::rank, with the message describe(d) (built from the
/// same gathered values on every rank, so the words are the same everywhere).
///
/// `local` (optional) is this rank's failure, as for agree(): failures are agreed in the
/// same reduction and come first (every rank throws the lowest failing rank's error, and
/// the values are not compared), so that "did every rank get this far, and with the same
/// values?" costs one small reduction.
void agree_equal(const Communicator& comm, std::span<const std::int64_t> values,
                 const std::function<std::string(const Disagreement&)>& describe,
                 ErrorKind kind = ErrorKind::Mismatch,
                 const std::optional<Failure>& local = std::nullopt);

}  // namespace ringdp
