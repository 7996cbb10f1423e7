#pragma once
/// \file
/// A tuning table: the measured choices of Auto (and the ring's segment size) per rank
/// count, as written by `ringdp-bench --tune` and read through RINGDP_TUNING.
///
/// File format (text, one rule per line; '#' starts a comment, blank lines are ignored):
///
///     ranks <n> bytes <min-bytes> <algorithm>    # algorithm: ring, rd, mpi or ps
///     ranks <n> segment <bytes>                  # the ring's segment size at n ranks
///
/// At exactly n ranks, a message of b bytes uses the algorithm of the rule with the
/// largest min-bytes <= b: the rules start at measured sizes, so this is the choice
/// measured at the nearest size below; a message smaller than every rule of n takes the
/// first rule (the nearest measured size above). Rank counts without rules fall back to
/// the built-in choice (select_algorithm), and without a segment rule to the built-in
/// segment size. Rules may come in any order; two rules for the same (n, min-bytes), or
/// two segment rules for the same n, are an error.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ringdp/types.hpp"

namespace ringdp {

/// An immutable, parsed tuning file. Local (no communication); thread-safe to read.
class TuningTable {
 public:
  /// Parses `text`; `source` names it in errors ("<source>:<line>: <what>").
  /// Throws InvalidArgument on the first malformed line.
  [[nodiscard]] static TuningTable parse(std::string_view text, const std::string& source);
  /// Reads and parses the file at `path`. Throws IoError when it cannot be read,
  /// InvalidArgument (naming the file and line) when it is malformed.
  [[nodiscard]] static TuningTable load(const std::string& path);

  /// The algorithm the table chooses for `bytes` bytes at `ranks` ranks, or nullopt when
  /// it has no rule for that rank count.
  [[nodiscard]] std::optional<Algorithm> algorithm(std::size_t bytes, int ranks) const;
  /// The ring's segment size in bytes at `ranks` ranks, or nullopt when not tuned.
  [[nodiscard]] std::optional<std::size_t> segment_bytes(int ranks) const;

  /// 64-bit FNV-1a hash of the file's text: equal texts give equal hashes, so ranks can
  /// check cheaply that they read the same file.
  [[nodiscard]] std::uint64_t hash() const noexcept { return hash_; }
  /// Where the table was read from (the path, or the `source` given to parse()).
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

 private:
  std::map<int, std::map<std::size_t, Algorithm>> rules_;  // ranks -> min-bytes -> choice
  std::map<int, std::size_t> segments_;                    // ranks -> segment bytes
  std::uint64_t hash_ = 0;
  std::string source_;
};

}  // namespace ringdp
