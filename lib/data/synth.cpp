#include "ringdp/data/synth.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "data/random.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/io/durable_file.hpp"
#include "ringdp/io/h5_handle.hpp"
#include "ringdp/io/hdf5_lock.hpp"

namespace ringdp::data {
namespace {

using io::h5_check;

constexpr double kQuantScale = 32.0;
constexpr double kQuantZero = 128.0;

// The teacher: labels are argmax(W2 tanh(W1 x + b1)), weights fixed by the seed.
class Teacher {
 public:
  Teacher(const SynthOptions& o)
      : d_(o.features), h_(o.hidden), c_(static_cast<std::size_t>(o.classes)) {
    detail::Rng rng(detail::stream_key(o.seed, detail::Stream::kTeacher));
    w1_.resize(h_ * d_);
    b1_.resize(h_);
    w2_.resize(c_ * h_);
    const double s1 = 1.0 / std::sqrt(static_cast<double>(d_));
    const double s2 = 1.0 / std::sqrt(static_cast<double>(h_));
    for (double& w : w1_) w = rng.normal() * s1;
    for (double& b : b1_) b = rng.normal() * 0.1;
    for (double& w : w2_) w = rng.normal() * s2;
  }

  [[nodiscard]] std::int32_t label(const double* x) const {
    std::vector<double> hidden(h_);
    for (std::size_t j = 0; j < h_; ++j) {
      double sum = b1_[j];
      for (std::size_t i = 0; i < d_; ++i) sum += w1_[j * d_ + i] * x[i];
      hidden[j] = std::tanh(sum);
    }
    std::size_t best = 0;
    double best_score = -1e300;
    for (std::size_t k = 0; k < c_; ++k) {
      double score = 0;
      for (std::size_t j = 0; j < h_; ++j) score += w2_[k * h_ + j] * hidden[j];
      if (score > best_score) {
        best_score = score;
        best = k;
      }
    }
    return static_cast<std::int32_t>(best);
  }

 private:
  std::size_t d_, h_, c_;
  std::vector<double> w1_, b1_, w2_;
};

// Generates rows [first, first + count) of the global sample sequence into `images`
// (stored type) and `labels`. Each row has its own stream keyed by (seed, row), so the
// bytes depend on the row index only, never on which rank generates it.
void generate(const SynthOptions& o, const Teacher& teacher, std::size_t first, std::size_t count,
              std::vector<std::byte>& images, std::vector<std::int32_t>& labels) {
  const std::size_t d = o.features;
  const std::size_t value_bytes = o.type == ElementType::UInt8 ? 1 : 4;
  images.resize(count * d * value_bytes);
  labels.resize(count);
  std::vector<double> x(d);
  const std::uint64_t key = detail::stream_key(o.seed, detail::Stream::kSample);
  for (std::size_t r = 0; r < count; ++r) {
    detail::Rng rng(detail::mix(key, first + r));
    std::byte* row = images.data() + r * d * value_bytes;
    for (std::size_t i = 0; i < d; ++i) {
      const double v = rng.normal();
      if (o.type == ElementType::UInt8) {
        const double q = std::clamp(std::nearbyint(v * kQuantScale + kQuantZero), 0.0, 255.0);
        row[i] = static_cast<std::byte>(static_cast<std::uint8_t>(q));
        x[i] = (q - kQuantZero) / kQuantScale;
      } else {
        const auto f = static_cast<float>(v);
        std::memcpy(row + i * 4, &f, 4);
        x[i] = f;
      }
    }
    labels[r] = teacher.label(x.data());
  }
}

struct Split {
  std::string images;
  std::string labels;
  std::size_t first_row;  // global index of its first sample
  std::size_t rows;
};

// The two datasets of a split, created (collectively, with MPI-IO) but not written yet,
// and the transfer properties of their writes.
struct SplitDatasets {
  io::DatasetHandle images;
  io::DatasetHandle labels;
  io::PlistHandle transfer;  // collective MPI-IO writes
};

// One chunked dataset of `rank` dimensions; created by every rank with the same calls
// (dataset creation is collective in parallel HDF5).
io::DatasetHandle create_dataset(hid_t file, const std::string& name, hid_t stored, int rank,
                                 const hsize_t* dims, const hsize_t* chunk, int gzip,
                                 const std::string& where) {
  io::PlistHandle lcpl(h5_check(H5Pcreate(H5P_LINK_CREATE), where, "no property list"));
  h5_check(H5Pset_create_intermediate_group(lcpl.get(), 1), where, "no intermediate groups");
  io::PlistHandle dcpl(h5_check(H5Pcreate(H5P_DATASET_CREATE), where, "no property list"));
  h5_check(H5Pset_chunk(dcpl.get(), rank, chunk), where, "cannot set chunking");
  h5_check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), where, "cannot set the fill time");
  if (gzip > 0) h5_check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip)), where, "no gzip");
  io::SpaceHandle space(h5_check(H5Screate_simple(rank, dims, nullptr), where, "no dataspace"));
  return io::DatasetHandle(h5_check(
      H5Dcreate2(file, name.c_str(), stored, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
      where, fmt::format("cannot create '{}'", name)));
}

SplitDatasets create_split(hid_t file, const SynthOptions& o, const Split& split,
                           const std::string& where) {
  const hsize_t n = split.rows;
  const hsize_t chunk = std::max<std::size_t>(1, std::min(o.chunk_rows, split.rows));
  const hid_t stored = o.type == ElementType::UInt8 ? H5T_STD_U8LE : H5T_IEEE_F32LE;
  const hsize_t image_dims[2] = {n, o.features};
  const hsize_t image_chunk[2] = {chunk, o.features};
  SplitDatasets sets;
  sets.images =
      create_dataset(file, split.images, stored, 2, image_dims, image_chunk, o.gzip, where);
  sets.labels = create_dataset(file, split.labels, H5T_STD_I32LE, 1, &n, &chunk, o.gzip, where);
  io::SpaceHandle scalar(h5_check(H5Screate(H5S_SCALAR), where, "no dataspace"));
  io::AttributeHandle attr(h5_check(H5Acreate2(sets.labels.get(), "classes", H5T_STD_I32LE,
                                               scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
                                    where, "cannot create attribute 'classes'"));
  h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT, &o.classes), where, "cannot write 'classes'");
  sets.transfer = io::PlistHandle(h5_check(H5Pcreate(H5P_DATASET_XFER), where, "no property list"));
  h5_check(H5Pset_dxpl_mpio(sets.transfer.get(), H5FD_MPIO_COLLECTIVE), where,
           "no collective transfer");
  return sets;
}

// This rank's part of a split: the chunk-aligned rows [lo, hi), written in rounds of
// `block` rows.
struct Share {
  std::size_t lo = 0;
  std::size_t hi = 0;
  std::size_t block = 0;
  std::size_t rounds = 0;
};

Share share_of(const Communicator& comm, const SynthOptions& o, std::size_t n) {
  // Rank r writes the chunk-aligned rows of chunks [c r / p, c (r+1) / p): no chunk is
  // shared between ranks, so each compressed chunk is produced by exactly one writer.
  const std::size_t chunk = std::max<std::size_t>(1, std::min(o.chunk_rows, n));
  const auto p = static_cast<std::size_t>(comm.size());
  const auto r = static_cast<std::size_t>(comm.rank());
  const std::size_t chunks = (n + chunk - 1) / chunk;
  const std::size_t row_bytes = o.features * (o.type == ElementType::UInt8 ? 1 : 4);
  const std::size_t block_chunks = std::max<std::size_t>(1, o.block_bytes / (chunk * row_bytes));
  Share share;
  share.lo = std::min(n, chunks * r / p * chunk);
  share.hi = std::min(n, chunks * (r + 1) / p * chunk);
  share.block = block_chunks * chunk;
  // Collective writes need every rank in every call: the number of calls is set by the
  // largest range, ceil(c / p) chunks; ranks with less left write an empty selection.
  share.rounds = ((chunks + p - 1) / p + block_chunks - 1) / block_chunks;
  return share;
}

// One collective write of rows [begin, begin + count) of the split (count may be 0: this
// rank then takes part with an empty selection); `images` and `labels` are reused buffers.
void write_rows(const SplitDatasets& sets, const SynthOptions& o, const Teacher& teacher,
                const Split& split, std::size_t begin, std::size_t count,
                std::vector<std::byte>& images, std::vector<std::int32_t>& labels,
                const std::string& where) {
  generate(o, teacher, split.first_row + begin, count, images, labels);
  const hsize_t d = o.features;
  io::SpaceHandle file_images(h5_check(H5Dget_space(sets.images.get()), where, "no dataspace"));
  io::SpaceHandle file_labels(h5_check(H5Dget_space(sets.labels.get()), where, "no dataspace"));
  const hsize_t mem_image_dims[2] = {std::max<hsize_t>(count, 1), d};
  const hsize_t mem_label_dims = std::max<hsize_t>(count, 1);
  io::SpaceHandle mem_images(
      h5_check(H5Screate_simple(2, mem_image_dims, nullptr), where, "no dataspace"));
  io::SpaceHandle mem_labels(
      h5_check(H5Screate_simple(1, &mem_label_dims, nullptr), where, "no dataspace"));
  if (count == 0) {
    for (const hid_t space :
         {file_images.get(), file_labels.get(), mem_images.get(), mem_labels.get()}) {
      h5_check(H5Sselect_none(space), where, "cannot select no rows");
    }
    images.resize(static_cast<std::size_t>(d) * (o.type == ElementType::UInt8 ? 1 : 4));
    labels.resize(1);
  } else {
    const hsize_t start[2] = {begin, 0};
    const hsize_t size[2] = {count, d};
    h5_check(H5Sselect_hyperslab(file_images.get(), H5S_SELECT_SET, start, nullptr, size, nullptr),
             where, "cannot select rows");
    h5_check(H5Sselect_hyperslab(file_labels.get(), H5S_SELECT_SET, start, nullptr, size, nullptr),
             where, "cannot select rows");
  }
  const hid_t memory = o.type == ElementType::UInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
  const hid_t dxpl = sets.transfer.get();
  h5_check(
      H5Dwrite(sets.images.get(), memory, mem_images.get(), file_images.get(), dxpl, images.data()),
      where, fmt::format("cannot write rows of '{}'", split.images));
  h5_check(H5Dwrite(sets.labels.get(), H5T_NATIVE_INT32, mem_labels.get(), file_labels.get(), dxpl,
                    labels.data()),
           where, fmt::format("cannot write rows of '{}'", split.labels));
}

// Creates and writes one split. Every step is agreed: a failure on any rank is the same
// Error, of its class, on every rank, and no rank is left in a collective write.
void write_split(const Communicator& comm, hid_t file, const SynthOptions& o,
                 const Teacher& teacher, const Split& split, const std::string& where) {
  const SplitDatasets sets = agree_on(comm, [&] { return create_split(file, o, split, where); });
  const Share share = share_of(comm, o, split.rows);
  std::vector<std::byte> images;
  std::vector<std::int32_t> labels;
  for (std::size_t round = 0; round < share.rounds; ++round) {
    const std::size_t begin = std::min(share.hi, share.lo + round * share.block);
    const std::size_t count = std::min(share.hi, begin + share.block) - begin;
    agree_on(comm,
             [&] { write_rows(sets, o, teacher, split, begin, count, images, labels, where); });
  }
}

// The options every rank checks alike (a failure is the same InvalidArgument everywhere).
void check_options(const Communicator& comm, const SynthOptions& o) {
  if (o.samples < static_cast<std::size_t>(comm.size())) {
    throw InvalidArgument(
        fmt::format("synth: {} samples, fewer than the {} ranks", o.samples, comm.size()));
  }
  if (o.features == 0 || o.classes < 2 || o.hidden == 0) {
    throw InvalidArgument(
        fmt::format("synth: need features > 0, classes >= 2, hidden > 0 (got {}, {}, {})",
                    o.features, o.classes, o.hidden));
  }
  if (o.gzip < 0 || o.gzip > 9) {
    throw InvalidArgument(fmt::format("synth: gzip level {} outside 0..9", o.gzip));
  }
}

io::FileHandle create_file(const Communicator& comm, const std::string& temporary,
                           const std::string& where) {
  io::PlistHandle fapl(h5_check(H5Pcreate(H5P_FILE_ACCESS), where, "no property list"));
  h5_check(H5Pset_fapl_mpio(fapl.get(), comm.native(), MPI_INFO_NULL), where, "cannot use MPI-IO");
  return io::FileHandle(
      h5_check(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), where,
               fmt::format("cannot create '{}'", temporary)));
}

// H5Fclose is collective with MPI-IO: when it returns on every rank, every rank's rows
// are in the file.
void close_file(const Communicator& comm, io::FileHandle& file, const std::string& temporary,
                const std::string& where) {
  const herr_t closed = H5Fclose(file.release());
  agree_on(comm, [&] {
    if (closed < 0) {
      throw IoError(
          fmt::format("{}: cannot close '{}': {}", where, temporary, io::hdf5_error_text()));
    }
  });
}

}  // namespace

void synthesize(const Communicator& comm, const std::string& path, const SynthOptions& o) {
  std::lock_guard lock(io::hdf5_mutex());
  io::silence_hdf5();
  const std::string temporary = path + ".partial";
  const std::string where = fmt::format("'{}'", path);
  agree_on(comm, [&] { check_options(comm, o); });
  io::FileHandle file = agree_on(comm, [&] { return create_file(comm, temporary, where); });

  const Teacher teacher(o);
  std::vector<Split> splits{{"/train/images", "/train/labels", 0, o.samples}};
  if (o.test_samples > 0) {
    splits.push_back({"/test/images", "/test/labels", o.samples, o.test_samples});
  }
  try {
    for (const Split& split : splits) write_split(comm, file.get(), o, teacher, split, where);
    close_file(comm, file, temporary, where);
  } catch (...) {
    // Every rank is here together (the error was agreed): close, drop the partial file.
    file.reset();
    if (comm.rank() == 0) std::remove(temporary.c_str());
    throw;
  }

  // Only complete files get the user's name: after every rank has closed, rank 0 flushes
  // the file to disk, renames it and flushes the directory (publish_file removes the
  // temporary on failure). A kill at any moment before the rename leaves only the
  // temporary (which the next run overwrites); after it, the complete file.
  agree_on(comm, [&] {
    if (comm.rank() != 0) return;
    try {
      io::publish_file(temporary, path);
    } catch (const Error& e) {
      throw IoError(fmt::format("{}: {}", where, e.cause()));
    }
  });
}

}  // namespace ringdp::data
