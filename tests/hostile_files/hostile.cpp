#include "hostile.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "data_fixture.hpp"

namespace ringdp::test::hostile {

namespace {

void check(herr_t status, const std::string& what) {
  if (status < 0) throw std::runtime_error("hostile-file writer: " + what);
}

// HDF5 ids made here are closed at the end of write_layout (the writer is not library
// code, so plain ids and one cleanup list are enough).
struct Ids {
  std::vector<std::pair<hid_t, herr_t (*)(hid_t)>> open;
  hid_t keep(hid_t id, herr_t (*close)(hid_t), const std::string& what) {
    if (id < 0) throw std::runtime_error("hostile-file writer: " + what);
    open.emplace_back(id, close);
    return id;
  }
  ~Ids() {
    for (auto it = open.rbegin(); it != open.rend(); ++it) static_cast<void>(it->second(it->first));
  }
};

void write_dataset(Ids& ids, hid_t file, hid_t lcpl, const DatasetSpec& d) {
  const hid_t space =
      d.dims.empty() ? ids.keep(H5Screate(H5S_SCALAR), H5Sclose, "scalar space")
                     : ids.keep(H5Screate_simple(static_cast<int>(d.dims.size()), d.dims.data(),
                                                 d.maxdims.empty() ? nullptr : d.maxdims.data()),
                                H5Sclose, "space of " + d.name);
  const hid_t dcpl = ids.keep(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dcpl");
  // No modification times in object headers, so that the same layout gives the same bytes.
  check(H5Pset_obj_track_times(dcpl, 0), "track times");
  if (!d.chunk.empty()) {
    check(H5Pset_chunk(dcpl, static_cast<int>(d.chunk.size()), d.chunk.data()), "chunk");
    if (d.fletcher32) check(H5Pset_fletcher32(dcpl), "fletcher32");
    if (d.gzip) check(H5Pset_deflate(dcpl, 1), "gzip");
  }
  const hid_t set =
      ids.keep(H5Dcreate2(file, d.name.c_str(), d.type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose,
               "create " + d.name);
  if (d.classes) {
    const hid_t shape =
        d.classes_elements == 0
            ? ids.keep(H5Screate(H5S_SCALAR), H5Sclose, "scalar")
            : ids.keep(H5Screate_simple(1, &d.classes_elements, nullptr), H5Sclose, "vector");
    const hid_t attr =
        ids.keep(H5Acreate2(set, "classes", H5T_STD_I64LE, shape, H5P_DEFAULT, H5P_DEFAULT),
                 H5Aclose, "attribute");
    const std::vector<long long> value(std::max<hsize_t>(1, d.classes_elements), *d.classes);
    check(H5Awrite(attr, H5T_NATIVE_LLONG, value.data()), "write attribute");
  }
  if (d.dims.empty() || !d.value) return;
  const hsize_t rows = std::min(d.rows_written, d.dims[0]);
  hsize_t per_row = 1;
  for (std::size_t i = 1; i < d.dims.size(); ++i) per_row *= d.dims[i];
  if (rows == 0 || per_row == 0) return;
  std::vector<double> values(rows * per_row);
  for (hsize_t r = 0; r < rows; ++r)
    for (hsize_t j = 0; j < per_row; ++j) values[r * per_row + j] = d.value(r, j);
  std::vector<hsize_t> start(d.dims.size(), 0);
  std::vector<hsize_t> count = d.dims;
  count[0] = rows;
  const hid_t file_space = ids.keep(H5Dget_space(set), H5Sclose, "file space");
  check(
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
      "select");
  const hid_t memory =
      ids.keep(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose,
               "memory space");
  check(H5Dwrite(set, H5T_NATIVE_DOUBLE, memory, file_space, H5P_DEFAULT, values.data()),
        "write " + d.name);
}

}  // namespace

void write_layout(const std::string& path, const Layout& layout) {
  Ids ids;
  const hid_t fapl = ids.keep(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "fapl");
  if (layout.latest_format) {
    check(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "libver");
  }
  const hid_t file = ids.keep(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose,
                              "create " + path);
  const hid_t lcpl = ids.keep(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "lcpl");
  check(H5Pset_create_intermediate_group(lcpl, 1), "intermediate groups");
  for (const std::string& g : layout.groups) {
    ids.keep(H5Gcreate2(file, g.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "group " + g);
  }
  for (const DatasetSpec& d : layout.datasets) write_dataset(ids, file, lcpl, d);
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

double image_value(Base base, hsize_t row, hsize_t j) {
  return base == Base::Checksummed ? static_cast<double>(byte_value(row, j))
                                   : static_cast<double>(float_value(row, j));
}

long long label_value(hsize_t row) { return static_cast<long long>((row * 5 + 3) % kBaseClasses); }

namespace {

DatasetSpec spec(std::string name, hid_t type, std::vector<hsize_t> dims,
                 std::vector<hsize_t> chunk, bool gzip, bool fletcher32,
                 std::function<double(hsize_t, hsize_t)> value) {
  DatasetSpec d;
  d.name = std::move(name);
  d.type = type;
  d.dims = std::move(dims);
  d.chunk = std::move(chunk);
  d.gzip = gzip;
  d.fletcher32 = fletcher32;
  d.value = std::move(value);
  return d;
}

}  // namespace

Layout base_layout(Base base) {
  Layout l;
  const auto image = [base](hsize_t r, hsize_t j) { return image_value(base, r, j); };
  const auto label = [](hsize_t r, hsize_t) { return static_cast<double>(label_value(r)); };
  if (base == Base::Checksummed) {
    l.latest_format = true;
    l.datasets.push_back(
        spec("/train/images", H5T_STD_U8LE, {kBaseRows, 4, 4}, {16, 4, 4}, true, true, image));
    l.datasets.push_back(
        spec("/train/labels", H5T_STD_I64LE, {kBaseRows}, {32}, false, true, label));
    l.datasets.back().classes = kBaseClasses;
    l.datasets.push_back(
        spec("/test/images", H5T_STD_U8LE, {24, 4, 4}, {8, 4, 4}, true, true, image));
    l.datasets.push_back(spec("/test/labels", H5T_STD_I64LE, {24}, {24}, false, true, label));
    l.datasets.back().classes = kBaseClasses;
  } else {
    l.datasets.push_back(
        spec("/train/images", H5T_IEEE_F32LE, {kBaseRows, 12}, {16, 12}, true, false, image));
    l.datasets.push_back(
        spec("/train/labels", H5T_STD_I32LE, {kBaseRows}, {}, false, false, label));
  }
  return l;
}

namespace {

constexpr hsize_t kHugeRows = hsize_t{1} << 40;

// A variant written from a layout: the checksummed base with `edit` applied.
Variant layout_variant(std::string name, std::string mention,
                       const std::function<void(Layout&)>& edit) {
  Variant v;
  v.file = "layout-" + name + ".h5";
  v.name = "layout: " + std::move(name);
  v.mention = std::move(mention);
  Layout layout = base_layout(Base::Checksummed);
  edit(layout);
  v.write = [layout](const std::string& path, const auto&) { write_layout(path, layout); };
  return v;
}

DatasetSpec& find(Layout& l, const std::string& name) {
  for (auto& d : l.datasets)
    if (d.name == name) return d;
  throw std::logic_error("no dataset " + name);
}

void erase(Layout& l, const std::string& name) {
  std::erase_if(l.datasets, [&](const DatasetSpec& d) { return d.name == name; });
}

// Raw-type helpers for types that are not predefined ids. They stay open for the life of
// the process: a handful of ids, and the layouts hold them by value.
hid_t string_type(std::size_t size) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, size);
  return t;
}

hid_t compound_type() {
  const hid_t t = H5Tcreate(H5T_COMPOUND, 8);
  H5Tinsert(t, "a", 0, H5T_STD_I32LE);
  H5Tinsert(t, "b", 4, H5T_IEEE_F32LE);
  return t;
}

std::vector<Variant> layout_variants() {
  std::vector<Variant> out;
  const std::string images = "/train/images";
  const std::string labels = "/train/labels";
  auto add = [&](std::string name, std::string mention, const std::function<void(Layout&)>& edit) {
    out.push_back(layout_variant(std::move(name), std::move(mention), [&](Layout& l) {
      // Write only the rows the valid file has, whatever extent the variant claims.
      for (auto& d : l.datasets) d.rows_written = std::min(d.rows_written, hsize_t{kBaseRows});
      edit(l);
    }));
  };

  // Missing pieces.
  add("no-images", "not found", [&](Layout& l) { erase(l, images); });
  add("no-labels", "not found", [&](Layout& l) { erase(l, labels); });
  add("no-train-group", "not found", [&](Layout& l) {
    erase(l, images);
    erase(l, labels);
  });
  add("images-is-a-group", "cannot be opened as a dataset", [&](Layout& l) {
    erase(l, images);
    l.groups.push_back(images);
  });
  add("empty-file", "not found", [&](Layout& l) { l.datasets.clear(); });

  // Wrong element types.
  const std::vector<std::pair<std::string, hid_t>> image_types = {
      {"int16", H5T_STD_I16LE},   {"int8", H5T_STD_I8LE},
      {"uint16", H5T_STD_U16LE},  {"float64", H5T_IEEE_F64LE},
      {"int64", H5T_STD_I64BE},   {"float16-ish-uint32", H5T_STD_U32LE},
      {"string", string_type(4)}, {"compound", compound_type()}};
  for (const auto& [tag, type] : image_types) {
    const bool numeric = tag != "string" && tag != "compound";
    add("images-" + tag, "not supported", [&, type = type, numeric](Layout& l) {
      DatasetSpec& d = find(l, images);
      d.type = type;
      d.gzip = false;  // the deflate filter is fine, but keep the type the only fault
      if (!numeric) d.value = nullptr;
    });
  }
  add("labels-float64", "must be integers",
      [&](Layout& l) { find(l, labels).type = H5T_IEEE_F64LE; });
  add("labels-string", "must be integers", [&](Layout& l) {
    find(l, labels).type = string_type(8);
    find(l, labels).value = nullptr;
  });

  // Wrong ranks and shapes.
  add("images-rank-1", "rank >= 2", [&](Layout& l) {
    DatasetSpec& d = find(l, images);
    d.dims = {kBaseRows};
    d.chunk = {16};
  });
  add("images-scalar", "rank >= 2", [&](Layout& l) {
    DatasetSpec& d = find(l, images);
    d.dims = {};
    d.chunk = {};
    d.gzip = d.fletcher32 = false;
  });
  add("images-zero-features", "empty feature shape", [&](Layout& l) {
    DatasetSpec& d = find(l, images);
    d.dims = {kBaseRows, 0};
    d.chunk = {};
    d.gzip = d.fletcher32 = false;
  });
  add("zero-rows", "fewer than the", [&](Layout& l) {
    find(l, images).dims[0] = 0;
    find(l, images).maxdims = {H5S_UNLIMITED, 4, 4};
    find(l, labels).dims[0] = 0;
    find(l, labels).maxdims = {H5S_UNLIMITED};
  });
  add("labels-rank-2", "must have rank 1", [&](Layout& l) {
    DatasetSpec& d = find(l, labels);
    d.dims = {kBaseRows, 1};
    d.chunk = {32, 1};
  });

  // Mismatched lengths.
  add("labels-short", "95 labels", [&](Layout& l) { find(l, labels).dims[0] = kBaseRows - 1; });
  add("labels-long", "97 labels", [&](Layout& l) { find(l, labels).dims[0] = kBaseRows + 1; });

  // Labels out of range (the attribute says 7 classes).
  for (const long long bad : {7LL, -1LL, 1LL << 40, -(1LL << 40)}) {
    add("label-" + std::to_string(bad), "outside [0, 7)", [&, bad](Layout& l) {
      find(l, labels).value = [bad](hsize_t r, hsize_t) {
        return r == 61 ? static_cast<double>(bad) : static_cast<double>(label_value(r));
      };
    });
  }
  for (const long long classes : {0LL, -3LL, 1LL << 40}) {
    add("classes-attribute-" + std::to_string(classes), "attribute 'classes'",
        [&, classes](Layout& l) { find(l, labels).classes = classes; });
  }

  // An attribute of 64 values where one is expected: reading it into one integer would
  // write past that integer.
  add("classes-attribute-64-values", "attribute 'classes'",
      [&](Layout& l) { find(l, labels).classes_elements = 64; });

  // Absurd shapes: 2^40 rows claimed, only the first rows stored (chunked storage allows a
  // huge extent at no cost). Reading or scanning them would take days and allocating for
  // them would exhaust memory: the reader must refuse before either.
  add("2^40-rows", "never written", [&](Layout& l) {
    find(l, images).dims[0] = kHugeRows;
    find(l, labels).dims[0] = kHugeRows;
  });
  add("2^40-rows-unlimited", "never written", [&](Layout& l) {
    find(l, images).dims[0] = kHugeRows;
    find(l, images).maxdims = {H5S_UNLIMITED, 4, 4};
    find(l, labels).dims[0] = kHugeRows;
    find(l, labels).maxdims = {H5S_UNLIMITED};
  });
  add("2^40-rows-images-only", "labels but",
      [&](Layout& l) { find(l, images).dims[0] = kHugeRows; });
  add("2^40-labels-only", "labels but", [&](Layout& l) { find(l, labels).dims[0] = kHugeRows; });
  add("2^40-features", "never written", [&](Layout& l) {
    DatasetSpec& d = find(l, images);
    d.dims = {kBaseRows, kHugeRows};
    d.chunk = {16, 16};
    d.rows_written = 0;
  });
  add("2^60-elements-per-row", "too large", [&](Layout& l) {
    DatasetSpec& d = find(l, images);
    d.dims = {kBaseRows, hsize_t{1} << 30, hsize_t{1} << 30};
    d.chunk = {1, 16, 16};
    d.rows_written = 0;
  });
  add("rows-never-written", "never written", [&](Layout& l) { find(l, images).rows_written = 16; });
  add("labels-never-written", "never written",
      [&](Layout& l) { find(l, labels).rows_written = 0; });
  return out;
}

}  // namespace

std::vector<Variant> dataset_variants(const std::vector<std::size_t>& base_sizes) {
  std::vector<Variant> out = layout_variants();
  const Base bases[] = {Base::Checksummed, Base::Classic};
  for (const Base base : bases) {
    const auto b = static_cast<std::size_t>(base);
    const std::size_t size = base_sizes[b];
    const std::string tag = base == Base::Checksummed ? "checksummed" : "classic";
    // Truncations: empty, 1 byte short, and 40 cuts spread over the file.
    std::vector<std::size_t> cuts = {0, 8, size - 1};
    for (std::size_t i = 1; i <= 40; ++i) cuts.push_back(size * i / 41);
    for (const std::size_t cut : cuts) {
      Variant v;
      v.name = tag + " truncated to " + std::to_string(cut) + " of " + std::to_string(size);
      v.file = tag + "-cut-" + std::to_string(cut) + ".h5";
      v.write = [b, cut](const std::string& path, const auto& all) {
        write_bytes(path, std::vector<unsigned char>(all[b].begin(), all[b].begin() + cut));
      };
      out.push_back(std::move(v));
    }
    // Flipped bytes: dense over the first 2 KiB (superblock, root group, object headers),
    // then spread over the rest (B-trees, heaps, chunk payloads). The masks vary so that
    // single bits, high bits and whole bytes all get their turn.
    std::vector<std::size_t> offsets;
    for (std::size_t o = 0; o < std::min<std::size_t>(2048, size); o += 29) offsets.push_back(o);
    for (std::size_t i = 0; i < 40; ++i) offsets.push_back(2048 + (size - 2048) * i / 40);
    const unsigned char masks[] = {0xFF, 0x01, 0x80, 0x10, 0x5A};
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      const std::size_t at = offsets[i];
      const unsigned char mask = masks[i % std::size(masks)];
      Variant v;
      v.name = tag + " byte " + std::to_string(at) + " xor " + std::to_string(mask);
      v.file = tag + "-flip-" + std::to_string(at) + ".h5";
      v.expect = base == Base::Checksummed ? Expect::ErrorOrIntact : Expect::ErrorOrAnything;
      v.base = base;
      v.write = [b, at, mask](const std::string& path, const auto& all) {
        std::vector<unsigned char> bytes = all[b];
        bytes[at] ^= mask;
        write_bytes(path, bytes);
      };
      out.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace ringdp::test::hostile
