// H5Dataset: the collective constructor (each rank opens and checks, the ranks agree),
// and the accessors. Opening is in h5_dataset_open.cpp, reads in h5_dataset_read.cpp,
// views of whole chunks in h5_dataset_map.cpp.

#include "ringdp/data/h5_dataset.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <array>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>

#include "data/h5_dataset_impl.hpp"
#include "ringdp/collectives/collectives.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::data {
namespace {

// What every rank must see alike for the ranks to read one dataset: the sampler deals
// rows and chunks by these, so ranks that differ would run different numbers of steps.
// (Each rank may open its own copy of the file, under its own path.)
std::array<std::int64_t, 5> shape_values(const H5Dataset::Impl& d) {
  return {static_cast<std::int64_t>(d.n), static_cast<std::int64_t>(d.features),
          static_cast<std::int64_t>(d.type), static_cast<std::int64_t>(d.chunk_rows),
          static_cast<std::int64_t>(d.classes)};
}

std::string shape_text(std::span<const std::int64_t> v) {
  return fmt::format("{} samples of {} {} values in chunks of {} rows, {}", v[0], v[1],
                     to_string(static_cast<ElementType>(v[2])), v[3],
                     v[4] > 0 ? fmt::format("{} classes", v[4]) : std::string("no class count"));
}

std::string describe_shapes(const Disagreement& d) {
  return fmt::format("the ranks opened different datasets: rank {} sees {}, rank 0 sees {}{}",
                     d.rank, shape_text(d.theirs), shape_text(d.reference),
                     d.ranks.size() > 1 ? fmt::format(" (ranks {} differ)", d.ranks_text()) : "");
}

// The smallest and largest label of the whole file, from each rank's range of its slice:
// one reduction of {lowest, ~highest} with MIN (min(~h) = ~max(h); the complement, unlike
// the negation, cannot overflow).
detail::LabelRange reduce_label_range(const Communicator& comm, detail::LabelRange mine) {
  std::array<std::int64_t, 2> values = {mine.lowest, ~static_cast<std::int64_t>(mine.highest)};
  allreduce<std::int64_t>(comm, values, ReduceOp::Min, Algorithm::Mpi);
  return {values[0], ~values[1]};
}

// No stated class count: the labels define it. Every rank decides alike from the reduced
// range, so every rank throws the same error by itself (the file's, not a rank's).
int classes_from_labels(const H5Dataset::Impl& d, const detail::LabelRange& labels) {
  if (labels.lowest < 0) {
    throw IoError(-1,
                  fmt::format("{}: label {} is negative (labels must be in [0, classes))",
                              d.where(d.names.labels), labels.lowest),
                  /*collective=*/true);
  }
  if (labels.highest >= std::numeric_limits<int>::max()) {
    throw IoError(-1,
                  fmt::format("{}: label {} is too large", d.where(d.names.labels), labels.highest),
                  /*collective=*/true);
  }
  return static_cast<int>(labels.highest) + 1;
}

}  // namespace

const char* to_string(IoDriver driver) noexcept {
  switch (driver) {
    case IoDriver::Serial:
      return "serial";
    case IoDriver::MpiIo:
      return "mpiio";
  }
  return "unknown";
}

const char* to_string(ElementType type) noexcept {
  switch (type) {
    case ElementType::UInt8:
      return "uint8";
    case ElementType::Float32:
      return "float32";
  }
  return "unknown";
}

H5Dataset::Impl::~Impl() {
  if (map != nullptr) munmap(const_cast<std::byte*>(map), map_bytes);
  std::lock_guard lock(io::hdf5_mutex());
  labels.reset();
  images.reset();
  file.reset();
}

H5Dataset::H5Dataset(const Communicator& comm, std::string path, DatasetOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = std::move(path);
  d.names = std::move(options.names);
  d.classes = options.classes;
  d.driver = options.driver;

  // Each step is agreed, so either every rank goes on or every rank throws the failure of
  // the lowest failing rank, as its class (an IoError stays an IoError), naming that rank.
  if (d.driver == IoDriver::MpiIo) {
    // H5Fopen through MPI-IO is collective (MPI_File_open): a rank that failed a check
    // before it would leave the others waiting there, so those checks are agreed first.
    agree_on(comm, [&] { detail::check_path(d); });
  }
  agree_on(comm, [&] { detail::open_local(d, comm); });

  // The labels are checked in parallel: rank r scans the r-th of k contiguous slices. The
  // slices are in row order, so the lowest failing rank (the one agreed on) holds the
  // first bad row of the file. The same reduction checks that every rank opened the same
  // shape.
  const auto k = static_cast<std::size_t>(comm.size());
  const auto r = static_cast<std::size_t>(comm.rank());
  detail::LabelRange labels;
  std::optional<Failure> failure;
  try {
    labels = detail::scan_labels(d, d.n * r / k, d.n * (r + 1) / k);
  } catch (const std::exception&) {
    failure = current_failure();
  }
  agree_equal(comm, shape_values(d), describe_shapes, ErrorKind::Mismatch, failure);

  // The class count is the same on every rank now, so is this branch.
  if (d.classes == 0) d.classes = classes_from_labels(d, reduce_label_range(comm, labels));
}

H5Dataset::~H5Dataset() = default;
H5Dataset::H5Dataset(H5Dataset&&) noexcept = default;
H5Dataset& H5Dataset::operator=(H5Dataset&&) noexcept = default;

const std::string& H5Dataset::path() const noexcept { return impl_->path; }
const DatasetNames& H5Dataset::names() const noexcept { return impl_->names; }
IoDriver H5Dataset::driver() const noexcept { return impl_->driver; }
std::size_t H5Dataset::size() const noexcept { return impl_->n; }
const std::vector<std::size_t>& H5Dataset::feature_shape() const noexcept { return impl_->shape; }
std::size_t H5Dataset::features() const noexcept { return impl_->features; }
ElementType H5Dataset::element_type() const noexcept { return impl_->type; }
std::size_t H5Dataset::row_bytes() const noexcept { return impl_->row_bytes(); }
int H5Dataset::classes() const noexcept { return impl_->classes; }
std::size_t H5Dataset::chunk_rows() const noexcept { return impl_->chunk_rows; }
std::size_t H5Dataset::chunks() const noexcept { return impl_->chunk_count(); }

void H5Dataset::set_chunk_cache(std::size_t bytes) {
  std::lock_guard lock(io::hdf5_mutex());
  io::silence_hdf5();
  Impl& d = *impl_;
  const std::string where = d.where(d.names.images);
  io::PlistHandle access(H5Pcreate(H5P_DATASET_ACCESS));
  io::h5_check(H5Pset_chunk_cache(access.get(), bytes == 0 ? 0 : 12421, bytes, 1.0), where,
               "cannot set its chunk cache");
  io::DatasetHandle reopened(io::h5_check(
      H5Dopen2(d.file.get(), d.names.images.c_str(), access.get()), where, "cannot be reopened"));
  d.images = std::move(reopened);
}

IoCounters H5Dataset::counters() const noexcept {
  return {impl_->rows.load(), impl_->bytes.load(), impl_->reads.load()};
}

}  // namespace ringdp::data
