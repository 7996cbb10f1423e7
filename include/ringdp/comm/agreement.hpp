#pragma once
/// \file
/// Collective agreement on errors: a failure on one rank becomes the same Error on every
/// rank, so that no rank goes on into a collective the others have left.

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/error.hpp"

namespace ringdp {

/// Collective over `comm`: every rank must call it. Each rank passes an empty string when
/// it is fine, or the cause of its failure. If any rank failed, every rank throws an
/// Error (collective() == true) that names the lowest failing rank and its cause, with
/// a count of the other failing ranks. Returns normally on every rank otherwise.
void agree(const Communicator& comm, std::string_view local_error);

/// Collective over `comm`: runs `fn` on every rank, then agrees. If `fn` throws on any
/// rank, every rank throws the agreed Error; otherwise returns fn's result.
template <class Fn>
auto agree_on(const Communicator& comm, Fn&& fn) -> std::invoke_result_t<Fn&&> {
  using Result = std::invoke_result_t<Fn&&>;
  std::string error;
  if constexpr (std::is_void_v<Result>) {
    try {
      std::forward<Fn>(fn)();
    } catch (const Error& e) {
      error = e.cause();
    } catch (const std::exception& e) {
      error = e.what();
    }
    agree(comm, error);
  } else {
    std::optional<Result> result;
    try {
      result.emplace(std::forward<Fn>(fn)());
    } catch (const Error& e) {
      error = e.cause();
    } catch (const std::exception& e) {
      error = e.what();
    }
    agree(comm, error);
    return std::move(*result);
  }
}

}  // namespace ringdp
