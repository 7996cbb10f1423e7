#include "ringdp/data/synth.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "data/durable_file.hpp"
#include "data/h5_handle.hpp"
#include "data/random.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"
#include "ringdp/data/hdf5_lock.hpp"

namespace ringdp::data {
namespace {

using detail::h5_check;

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

void agree_on_status(const Communicator& comm, const std::exception_ptr& failure) {
  std::string error;
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const Error& e) {
      error = e.cause();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree(comm, error);
}

void write_split(const Communicator& comm, hid_t file, const SynthOptions& o,
                 const Teacher& teacher, const Split& split, const std::string& where) {
  const std::size_t n = split.rows;
  const std::size_t d = o.features;
  const std::size_t chunk = std::max<std::size_t>(1, std::min(o.chunk_rows, n));
  const hid_t stored = o.type == ElementType::UInt8 ? H5T_STD_U8LE : H5T_IEEE_F32LE;
  const hid_t memory = o.type == ElementType::UInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;

  // Dataset creation is collective in parallel HDF5: every rank makes the same calls.
  detail::PlistHandle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  const hsize_t image_dims[2] = {n, d};
  const hsize_t image_chunk[2] = {chunk, d};
  detail::PlistHandle image_dcpl(H5Pcreate(H5P_DATASET_CREATE));
  h5_check(H5Pset_chunk(image_dcpl.get(), 2, image_chunk), where, "cannot set chunking");
  H5Pset_fill_time(image_dcpl.get(), H5D_FILL_TIME_NEVER);
  if (o.gzip > 0)
    h5_check(H5Pset_deflate(image_dcpl.get(), static_cast<unsigned>(o.gzip)), where, "no gzip");
  detail::SpaceHandle image_space(H5Screate_simple(2, image_dims, nullptr));
  detail::DatasetHandle images(
      h5_check(H5Dcreate2(file, split.images.c_str(), stored, image_space.get(), lcpl.get(),
                          image_dcpl.get(), H5P_DEFAULT),
               where, fmt::format("cannot create '{}'", split.images)));
  const hsize_t label_dims = n;
  const hsize_t label_chunk = chunk;
  detail::PlistHandle label_dcpl(H5Pcreate(H5P_DATASET_CREATE));
  h5_check(H5Pset_chunk(label_dcpl.get(), 1, &label_chunk), where, "cannot set chunking");
  H5Pset_fill_time(label_dcpl.get(), H5D_FILL_TIME_NEVER);
  if (o.gzip > 0)
    h5_check(H5Pset_deflate(label_dcpl.get(), static_cast<unsigned>(o.gzip)), where, "no gzip");
  detail::SpaceHandle label_space(H5Screate_simple(1, &label_dims, nullptr));
  detail::DatasetHandle labels(
      h5_check(H5Dcreate2(file, split.labels.c_str(), H5T_STD_I32LE, label_space.get(), lcpl.get(),
                          label_dcpl.get(), H5P_DEFAULT),
               where, fmt::format("cannot create '{}'", split.labels)));
  {
    detail::SpaceHandle scalar(H5Screate(H5S_SCALAR));
    detail::AttributeHandle attr(h5_check(
        H5Acreate2(labels.get(), "classes", H5T_STD_I32LE, scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
        where, "cannot create attribute 'classes'"));
    h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT, &o.classes), where, "cannot write 'classes'");
  }

  // Rank r writes the chunk-aligned rows of chunks [c r / p, c (r+1) / p): no chunk is
  // shared between ranks, so each compressed chunk is produced by exactly one writer.
  const auto p = static_cast<std::size_t>(comm.size());
  const auto r = static_cast<std::size_t>(comm.rank());
  const std::size_t chunks = (n + chunk - 1) / chunk;
  const std::size_t lo = std::min(n, chunks * r / p * chunk);
  const std::size_t hi = std::min(n, chunks * (r + 1) / p * chunk);
  const std::size_t row_bytes = d * (o.type == ElementType::UInt8 ? 1 : 4);
  const std::size_t block_chunks = std::max<std::size_t>(1, o.block_bytes / (chunk * row_bytes));
  const std::size_t block = block_chunks * chunk;
  // Collective writes need every rank in every call: the number of calls is set by the
  // largest range, ceil(c / p) chunks; ranks with less left write an empty selection.
  const std::size_t rounds = ((chunks + p - 1) / p + block_chunks - 1) / block_chunks;

  detail::PlistHandle dxpl(H5Pcreate(H5P_DATASET_XFER));
  h5_check(H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE), where, "no collective transfer");
  std::vector<std::byte> image_buffer;
  std::vector<std::int32_t> label_buffer;
  for (std::size_t round = 0; round < rounds; ++round) {
    std::exception_ptr failure;
    try {
      const std::size_t begin = std::min(hi, lo + round * block);
      const std::size_t count = std::min(hi, begin + block) - begin;
      generate(o, teacher, split.first_row + begin, count, image_buffer, label_buffer);
      detail::SpaceHandle file_images(H5Dget_space(images.get()));
      detail::SpaceHandle file_labels(H5Dget_space(labels.get()));
      const hsize_t mem_image_dims[2] = {std::max<hsize_t>(count, 1), d};
      const hsize_t mem_label_dims = std::max<hsize_t>(count, 1);
      detail::SpaceHandle mem_images(H5Screate_simple(2, mem_image_dims, nullptr));
      detail::SpaceHandle mem_labels(H5Screate_simple(1, &mem_label_dims, nullptr));
      if (count == 0) {
        H5Sselect_none(file_images.get());
        H5Sselect_none(file_labels.get());
        H5Sselect_none(mem_images.get());
        H5Sselect_none(mem_labels.get());
        image_buffer.resize(row_bytes);
        label_buffer.resize(1);
      } else {
        const hsize_t start[2] = {begin, 0};
        const hsize_t size[2] = {count, d};
        H5Sselect_hyperslab(file_images.get(), H5S_SELECT_SET, start, nullptr, size, nullptr);
        H5Sselect_hyperslab(file_labels.get(), H5S_SELECT_SET, start, nullptr, size, nullptr);
      }
      h5_check(H5Dwrite(images.get(), memory, mem_images.get(), file_images.get(), dxpl.get(),
                        image_buffer.data()),
               where, fmt::format("cannot write rows of '{}'", split.images));
      h5_check(H5Dwrite(labels.get(), H5T_NATIVE_INT32, mem_labels.get(), file_labels.get(),
                        dxpl.get(), label_buffer.data()),
               where, fmt::format("cannot write rows of '{}'", split.labels));
    } catch (...) {
      failure = std::current_exception();
    }
    agree_on_status(comm, failure);
  }
}

}  // namespace

void synthesize(const Communicator& comm, const std::string& path, const SynthOptions& o) {
  std::lock_guard lock(hdf5_mutex());
  detail::silence_hdf5();
  const std::string temporary = path + ".partial";
  const std::string where = fmt::format("'{}'", path);
  {
    std::string error;
    if (o.samples < static_cast<std::size_t>(comm.size())) {
      error = fmt::format("synth: {} samples, fewer than the {} ranks", o.samples, comm.size());
    } else if (o.features == 0 || o.classes < 2 || o.hidden == 0) {
      error = fmt::format("synth: need features > 0, classes >= 2, hidden > 0 (got {}, {}, {})",
                          o.features, o.classes, o.hidden);
    } else if (o.gzip < 0 || o.gzip > 9) {
      error = fmt::format("synth: gzip level {} outside 0..9", o.gzip);
    }
    agree(comm, error);
  }

  std::exception_ptr failure;
  detail::FileHandle file;
  try {
    detail::PlistHandle fapl(H5Pcreate(H5P_FILE_ACCESS));
    h5_check(H5Pset_fapl_mpio(fapl.get(), comm.native(), MPI_INFO_NULL), where,
             "cannot use MPI-IO");
    file = detail::FileHandle(
        h5_check(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), where,
                 fmt::format("cannot create '{}'", temporary)));
  } catch (...) {
    failure = std::current_exception();
  }
  agree_on_status(comm, failure);

  const Teacher teacher(o);
  std::vector<Split> splits{{"/train/images", "/train/labels", 0, o.samples}};
  if (o.test_samples > 0) {
    splits.push_back({"/test/images", "/test/labels", o.samples, o.test_samples});
  }
  try {
    for (const Split& split : splits) {
      failure = nullptr;
      try {
        write_split(comm, file.get(), o, teacher, split, where);
      } catch (const Error& e) {
        if (e.collective()) throw;  // already agreed inside
        failure = std::current_exception();
      } catch (...) {
        failure = std::current_exception();
      }
      agree_on_status(comm, failure);
    }
  } catch (...) {
    // Every rank is here together (the error was agreed): close, drop the partial file.
    file.reset();
    if (comm.rank() == 0) std::remove(temporary.c_str());
    throw;
  }
  // H5Fclose is collective with MPI-IO: when it returns on every rank, every rank's rows
  // are in the file.
  const herr_t closed = H5Fclose(file.get());
  static_cast<void>(file.release());
  std::string error;
  if (closed < 0)
    error = fmt::format("{}: cannot close '{}': {}", where, temporary, detail::hdf5_error_text());
  try {
    agree(comm, error);
  } catch (const Error&) {
    if (comm.rank() == 0) std::remove(temporary.c_str());
    throw;
  }

  // Only complete files get the user's name: after every rank has closed, rank 0 flushes
  // the file to disk, renames it and flushes the directory (publish_file removes the
  // temporary on failure). A kill at any moment before the rename leaves only the
  // temporary (which the next run overwrites); after it, the complete file.
  error.clear();
  if (comm.rank() == 0) {
    try {
      detail::publish_file(temporary, path);
    } catch (const Error& e) {
      error = fmt::format("{}: {}", where, e.cause());
    }
  }
  agree(comm, error);
}

}  // namespace ringdp::data
