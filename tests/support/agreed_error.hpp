#pragma once
// Helpers of the tests where every rank must throw the same agreed error: run a call,
// capture what it threw, and check collectively that every rank threw the same thing.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/error.hpp"

namespace ringdp::test {

/// What a call threw (threw == false: it returned).
struct Outcome {
  bool threw = false;
  ErrorKind kind = ErrorKind::Generic;
  bool collective = false;
  int rank = -2;
  std::string cause;
};

/// Runs `fn`, catching a ringdp::Error.
template <class Fn>
Outcome outcome_of(Fn&& fn) {
  Outcome o;
  try {
    fn();
  } catch (const Error& e) {
    o = {true, e.kind(), e.collective(), e.rank(), e.cause()};
  }
  return o;
}

/// Collective: true when every rank threw a collective error of `kind` naming `rank`, with
/// a cause containing every phrase and identical on every rank.
inline bool same_error_everywhere(const Outcome& o, int rank,
                                  const std::vector<std::string>& phrases,
                                  ErrorKind kind = ErrorKind::InvalidArgument) {
  bool ok = o.threw && o.kind == kind && o.collective && o.rank == rank;
  for (const std::string& p : phrases) ok = ok && o.cause.find(p) != std::string::npos;
  UNSCOPED_INFO("threw " << o.threw << " kind " << to_string(o.kind) << " collective "
                         << o.collective << " rank " << o.rank << " cause: " << o.cause);
  const bool identical = same_on_all_ranks(hash_bytes(o.cause.data(), o.cause.size()));
  return all_ranks(ok) && identical;
}

}  // namespace ringdp::test
