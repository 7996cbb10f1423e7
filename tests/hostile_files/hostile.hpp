#pragma once
// Building blocks of the hostile-file tests: a small HDF5 writer that can produce
// well-formed and ill-formed layouts (odd types, huge extents, missing pieces), byte-level
// corruptions of a valid file (truncation, flipped bytes), and the list of variants.
// Everything is deterministic: the same variants, bytes and offsets on every run.

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ringdp::test::hostile {

/// One dataset of a layout. Values are written through HDF5's conversion from double, so
/// the same generator serves every numeric file type.
struct DatasetSpec {
  std::string name;
  hid_t type = H5T_STD_U8LE;     ///< file type (a predefined id, or one made by the caller)
  std::vector<hsize_t> dims;     ///< extent; dims[0] = rows
  std::vector<hsize_t> maxdims;  ///< empty: fixed (= dims); may hold H5S_UNLIMITED
  std::vector<hsize_t> chunk;    ///< empty: contiguous
  bool gzip = false;
  bool fletcher32 = false;             ///< a checksum per chunk, so flipped payload bytes show
  hsize_t rows_written = ~hsize_t{0};  ///< only the first rows get data (clamped to dims[0])
  std::function<double(hsize_t row, hsize_t j)> value;  ///< j: flat index within the row
  std::optional<long long> classes;                     ///< integer attribute "classes" when set
  hsize_t classes_elements = 0;  ///< 0: a scalar attribute; n: n copies of the value
};

/// A whole file.
struct Layout {
  /// The newest file format: checksummed superblock and object headers.
  bool latest_format = false;
  std::vector<DatasetSpec> datasets;
  std::vector<std::string> groups;  ///< empty groups to create (a name that is not a dataset)
};

/// Writes `layout` to `path` (rank-local, serial HDF5). Throws std::runtime_error.
void write_layout(const std::string& path, const Layout& layout);

/// Every byte of a file, and writing bytes back.
std::vector<unsigned char> read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes);

/// The two valid bases the byte-level corruptions start from.
/// "checksummed": latest format, uint8 images 96 x 4 x 4 (gzip + fletcher32 chunks), int64
/// labels with a "classes" attribute, plus a test split. Any flipped byte that matters is
/// caught by a checksum, so such a file must fail or read back intact.
/// "classic": HDF5's default (oldest) format as most tools write it, float32 images 96 x 12
/// gzip-chunked, contiguous int32 labels and no attribute: a flipped payload byte may go
/// unnoticed (nothing can catch it), but must never crash or hang.
enum class Base { Checksummed, Classic };
Layout base_layout(Base base);
constexpr std::size_t kBaseRows = 96;
constexpr int kBaseClasses = 7;

/// Values of the bases (also what an intact read must return).
double image_value(Base base, hsize_t row, hsize_t j);
long long label_value(hsize_t row);

/// What a variant must end in.
enum class Expect {
  Error,           ///< a ringdp::Error on every rank
  ErrorOrIntact,   ///< an Error, or a dataset whose every row reads back as the base's
  ErrorOrAnything  ///< an Error, or a dataset that opens and reads (no crash, no hang)
};

/// One corrupted file.
struct Variant {
  std::string name;
  std::string file;  ///< file name inside the test directory
  Expect expect = Expect::Error;
  Base base = Base::Checksummed;  ///< for ErrorOrIntact
  std::string mention;            ///< text the error must contain (empty: just the path)
  /// Writes the variant to `path` (called on one rank); `bases` are the valid files' bytes.
  std::function<void(const std::string& path, const std::vector<std::vector<unsigned char>>& bases)>
      write;
};

/// Every variant of the dataset reader. `base_sizes[i]` is the size of base i (Base order).
std::vector<Variant> dataset_variants(const std::vector<std::size_t>& base_sizes);

}  // namespace ringdp::test::hostile
