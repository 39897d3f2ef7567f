#include "escala/data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <glob.h>
#include <numeric>
#include <unistd.h>

#include "data/csv_internal.h"
#include "data/dataset_internal.h"
#include "data/input.h"
#include "data/libsvm_internal.h"
#include "data/npy_internal.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/data/split.h"

namespace escala::data {

namespace fs = std::filesystem;

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kAuto:
      return "auto";
    case Format::kCsv:
      return "csv";
    case Format::kLibsvm:
      return "libsvm";
    case Format::kNpy:
      return "npy";
  }
  return "unknown";
}

Format ParseFormat(std::string_view name) {
  if (name == "auto") return Format::kAuto;
  if (name == "csv" || name == "tsv") return Format::kCsv;
  if (name == "libsvm" || name == "svm" || name == "svmlight") return Format::kLibsvm;
  if (name == "npy") return Format::kNpy;
  Throw(ErrorCode::kInvalidArgument, "unknown data format '{}': expected csv, libsvm, npy or auto",
        name);
}

Format FormatFromPath(std::string_view path) {
  std::string_view p = path;
  if (p.size() > 3 && p.substr(p.size() - 3) == ".gz") p.remove_suffix(3);
  auto ends = [&](std::string_view ext) {
    return p.size() >= ext.size() && p.substr(p.size() - ext.size()) == ext;
  };
  if (ends(".csv") || ends(".tsv") || ends(".txt")) return Format::kCsv;
  if (ends(".svm") || ends(".libsvm") || ends(".svmlight")) return Format::kLibsvm;
  if (ends(".npy")) return Format::kNpy;
  return Format::kAuto;
}

namespace {

// A sparse dataset densified for a table or a dense matrix may take at most half the machine's
// memory and this many columns.
constexpr std::int64_t kMaxDenseColumns = std::int64_t{1} << 22;

double MaxDenseBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? 0.5 * static_cast<double>(pages) * static_cast<double>(page)
                               : 64.0 * (1 << 30);
}

bool HasGlob(std::string_view s) {
  return s.find_first_of("*?[") != std::string_view::npos;
}

bool IsLabelsNpy(std::string_view path) {
  return path.size() >= 11 && path.substr(path.size() - 11) == ".labels.npy";
}

// Data files in a directory: regular files not starting with '_' or '.', with a data extension
// (or any extension when the format is given).
void ListDirectory(const fs::path& dir, Format format, std::vector<std::string>* out) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '_' || name[0] == '.') continue;
    const std::string path = entry.path().string();
    if (IsLabelsNpy(path)) continue;
    const Format f = FormatFromPath(path);
    if (format == Format::kAuto ? f == Format::kAuto : (f != Format::kAuto && f != format)) {
      continue;
    }
    out->push_back(path);
  }
}

}  // namespace

Dataset Dataset::Open(const std::string& spec, DatasetOptions options) {
  std::vector<std::string> specs;
  std::size_t start = 0;
  // A comma-separated list of specs.
  for (;;) {
    const std::size_t comma = spec.find(',', start);
    specs.push_back(spec.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return Open(specs, std::move(options));
}

std::vector<std::string> Dataset::ResolvePaths(std::span<const std::string> specs, Format format) {
  ESCALA_CHECK(!specs.empty(), kInvalidArgument, "no data files given");
  std::vector<std::string> paths;
  for (const auto& s : specs) {
    ESCALA_CHECK(!s.empty(), kInvalidArgument, "empty data path");
    std::error_code ec;
    if (HasGlob(s)) {
      glob_t g{};
      const int rc = ::glob(s.c_str(), 0, nullptr, &g);
      if (rc == 0) {
        for (std::size_t i = 0; i < g.gl_pathc; ++i) {
          const std::string p = g.gl_pathv[i];
          if (fs::is_directory(p, ec)) {
            ListDirectory(p, format, &paths);
          } else if (!IsLabelsNpy(p)) {
            paths.push_back(p);
          }
        }
      }
      ::globfree(&g);
      ESCALA_CHECK(rc == 0, kNotFound, "no files match '{}'", s);
    } else if (fs::is_directory(s, ec)) {
      const std::size_t before = paths.size();
      ListDirectory(s, format, &paths);
      ESCALA_CHECK(paths.size() > before, kNotFound,
                   "directory '{}' holds no data files (.csv, .tsv, .txt, .svm, .libsvm, "
                   ".svmlight, .npy, optionally .gz)",
                   s);
    } else {
      ESCALA_CHECK(fs::exists(s, ec), kNotFound, "{}: no such file or directory", s);
      paths.push_back(s);
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  ESCALA_CHECK(paths.size() < kMaxRowIdFiles, kInvalidArgument,
               "a dataset may hold at most {} files, found {}", kMaxRowIdFiles, paths.size());
  return paths;
}

Dataset Dataset::Open(std::span<const std::string> specs, DatasetOptions options) {
  const std::vector<std::string> paths = ResolvePaths(specs, options.format);
  Dataset ds;
  if (options.format == Format::kAuto) {
    for (const auto& p : paths) {
      const Format f = FormatFromPath(p);
      ESCALA_CHECK(f != Format::kAuto, kInvalidArgument,
                   "cannot tell the format of '{}' from its name; give the format (csv, libsvm "
                   "or npy)",
                   p);
      ESCALA_CHECK(options.format == Format::kAuto || f == options.format, kInvalidArgument,
                   "dataset mixes formats: '{}' is {} but '{}' is {}", paths.front(),
                   FormatName(options.format), p, FormatName(f));
      options.format = f;
    }
  }
  for (const auto& p : paths) {
    DataFile f;
    f.path = p;
    f.size = fs::file_size(p);
    if (f.size == 0) {
      ESCALA_LOG_WARN("{}: empty file ignored", p);
      ++ds.empty_files_;
      continue;
    }
    f.compressed = internal::IsGzipFile(p);
    ESCALA_CHECK(f.size < kMaxRowIdOffset || f.compressed, kInvalidArgument,
                 "{}: files larger than {} bytes are not supported", p, kMaxRowIdOffset);
    ESCALA_CHECK(!(f.compressed && options.format == Format::kNpy), kInvalidArgument,
                 "{}: compressed NPY files are not supported", p);
    ds.files_.push_back(std::move(f));
  }
  ESCALA_CHECK(!ds.files_.empty(), kInvalidArgument, "{}: empty file{}", paths.front(),
               paths.size() > 1 ? fmt::format(" (all {} files are empty)", paths.size()) : "");
  ds.options_ = std::move(options);

  switch (ds.options_.format) {
    case Format::kCsv: {
      const auto first = internal::ProbeCsvFile(ds.files_[0].path, ds.options_.csv);
      ds.schema_ = first.schema;
      for (std::size_t i = 0; i < ds.files_.size(); ++i) {
        internal::CsvHeader h = first.header;
        if (i > 0) {
          h = internal::ReadCsvFileHeader(ds.files_[i].path, ds.options_.csv);
          if (h.names != first.header.names) {
            std::vector<Field> fa, fb;
            for (const auto& n : first.header.names) fa.push_back({n, DataType::kFloat64});
            for (const auto& n : h.names) fb.push_back({n, DataType::kFloat64});
            Throw(ErrorCode::kInvalidArgument, "{}: its header differs from {}'s: {}",
                  ds.files_[i].path, ds.files_[0].path, Schema(fb).Diff(Schema(fa)));
          }
        }
        ds.data_start_.push_back(h.data_start);
        ds.data_line_.push_back(h.data_line);
      }
      break;
    }
    case Format::kNpy: {
      std::int64_t cols = -1;
      for (const auto& f : ds.files_) {
        const NpyHeader h = internal::ReadNpyFileHeader(f.path);
        ESCALA_CHECK(h.shape.size() == 1 || h.shape.size() == 2, kInvalidArgument,
                     "{}: expected a 1-D or 2-D array", f.path);
        const std::int64_t c = internal::NpyCols(h);
        ESCALA_CHECK(cols < 0 || c == cols, kInvalidArgument, "{}: {} columns, but {} has {}",
                     f.path, c, ds.files_[0].path, cols);
        cols = c;
        ds.data_start_.push_back(static_cast<std::uint64_t>(h.data_offset));
        ds.data_line_.push_back(1);
      }
      std::vector<Field> fields;
      for (std::int64_t j = 0; j < cols; ++j) {
        fields.push_back({fmt::format("f{}", j), DataType::kFloat32});
      }
      ds.schema_ = Schema(std::move(fields));
      break;
    }
    case Format::kLibsvm:
      for (std::size_t i = 0; i < ds.files_.size(); ++i) {
        ds.data_start_.push_back(0);
        ds.data_line_.push_back(1);
      }
      break;
    case Format::kAuto:
      ESCALA_ASSERT(false);
  }
  return ds;
}

std::uint64_t Dataset::total_bytes() const {
  std::uint64_t t = 0;
  for (const auto& f : files_) t += f.size;
  return t;
}

std::vector<FileRange> Dataset::Plan(Shard shard) const {
  ESCALA_CHECK(shard.world >= 1 && shard.rank >= 0 && shard.rank < shard.world, kInvalidArgument,
               "invalid shard: rank {} of world {}", shard.rank, shard.world);
  const auto nfiles = static_cast<int>(files_.size());
  std::vector<FileRange> out;
  if (shard.world == 1) {
    for (int i = 0; i < nfiles; ++i) {
      out.push_back({i, data_start_[static_cast<std::size_t>(i)],
                     files_[static_cast<std::size_t>(i)].size, true});
    }
    return out;
  }
  bool any_compressed = false;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < files_.size(); ++i) {
    any_compressed |= files_[i].compressed;
    total += files_[i].size - std::min(files_[i].size, data_start_[i]);
  }
  // Whole files, largest first to the least loaded rank (ties: lower rank, lower file index).
  std::vector<int> order(static_cast<std::size_t>(nfiles));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return files_[static_cast<std::size_t>(a)].size > files_[static_cast<std::size_t>(b)].size;
  });
  std::vector<std::uint64_t> load(static_cast<std::size_t>(shard.world), 0);
  std::vector<int> owner(static_cast<std::size_t>(nfiles), 0);
  for (const int f : order) {
    const auto r =
        static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[static_cast<std::size_t>(f)] = static_cast<int>(r);
    load[r] += files_[static_cast<std::size_t>(f)].size;
  }
  const std::uint64_t max_load = *std::max_element(load.begin(), load.end());
  const double mean = static_cast<double>(total_bytes()) / shard.world;
  const bool whole_files =
      any_compressed || (nfiles >= shard.world && static_cast<double>(max_load) <= 1.25 * mean);
  if (whole_files) {
    for (int i = 0; i < nfiles; ++i) {
      if (owner[static_cast<std::size_t>(i)] == shard.rank) {
        out.push_back({i, data_start_[static_cast<std::size_t>(i)],
                       files_[static_cast<std::size_t>(i)].size, true});
      }
    }
    return out;
  }
  // Byte ranges over the concatenated data regions of all files.
  const std::uint64_t lo =
      total * static_cast<std::uint64_t>(shard.rank) / static_cast<std::uint64_t>(shard.world);
  const std::uint64_t hi =
      total * static_cast<std::uint64_t>(shard.rank + 1) / static_cast<std::uint64_t>(shard.world);
  std::uint64_t base = 0;
  for (int i = 0; i < nfiles; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const std::uint64_t len = files_[k].size - std::min(files_[k].size, data_start_[k]);
    const std::uint64_t b = std::max(lo, base);
    const std::uint64_t e = std::min(hi, base + len);
    if (b < e) {
      FileRange r;
      r.file = i;
      r.begin = data_start_[k] + (b - base);
      r.end = data_start_[k] + (e - base);
      r.whole = r.begin == data_start_[k] && r.end == files_[k].size;
      out.push_back(r);
    }
    base += len;
  }
  return out;
}

namespace internal {

// Columns of a dense read as a table: float32 features, then the label when there is one. Copied
// in blocks of rows, so that each block's rows stay in cache while its columns are written.
Table DenseToTable(const DenseData& d) {
  constexpr std::int64_t kBlock = 256;
  std::vector<Column> cols;
  std::vector<float*> out;
  for (std::int64_t j = 0; j < d.cols(); ++j) {
    cols.emplace_back(d.feature_names[static_cast<std::size_t>(j)], DataType::kFloat32, d.rows());
    out.push_back(cols.back().mutable_f32().data());
  }
  for (std::int64_t b = 0; b < d.rows(); b += kBlock) {
    const std::int64_t e = std::min(d.rows(), b + kBlock);
    for (std::int64_t j = 0; j < d.cols(); ++j) {
      float* col = out[static_cast<std::size_t>(j)];
      for (std::int64_t i = b; i < e; ++i) col[i] = d.features(i, j);
    }
  }
  if (!d.label_name.empty() && !d.labels.empty()) {
    Column c(d.label_name, DataType::kFloat32, d.rows());
    std::copy(d.labels.begin(), d.labels.end(), c.mutable_f32().begin());
    cols.push_back(std::move(c));
  }
  Table table(std::move(cols));
  table.set_row_ids(d.row_ids);
  return table;
}

std::vector<CsvInput> CsvInputsFor(const Dataset& ds, const std::vector<FileRange>& plan,
                                   std::span<const std::uint64_t> data_start,
                                   std::span<const std::int64_t> data_line) {
  std::vector<CsvInput> inputs;
  for (const auto& r : plan) {
    const auto k = static_cast<std::size_t>(r.file);
    CsvInput in;
    in.path = ds.files()[k].path;
    in.name = in.path;
    in.file_index = static_cast<std::uint64_t>(r.file);
    in.data_start = data_start[k];
    in.data_line = data_line[k];
    in.begin = r.begin;
    in.end = r.whole ? std::numeric_limits<std::uint64_t>::max() : r.end;
    inputs.push_back(std::move(in));
  }
  return inputs;
}

// Row range [first, last) of an NPY file whose rows start in [begin, end).
void NpyRowRange(const FileRange& r, const NpyHeader& h, std::int64_t* first, std::int64_t* last) {
  const std::int64_t rows = NpyRows(h);
  const std::int64_t row_bytes = std::max<std::int64_t>(1, NpyCols(h) * NpyItemSize(h.dtype));
  if (r.whole) {
    *first = 0;
    *last = rows;
    return;
  }
  const auto rel_b = static_cast<std::int64_t>(r.begin) - h.data_offset;
  const auto rel_e = static_cast<std::int64_t>(r.end) - h.data_offset;
  *first = std::min(rows, (rel_b + row_bytes - 1) / row_bytes);
  *last = std::min(rows, (rel_e + row_bytes - 1) / row_bytes);
}

std::string NpyLabelsPath(const std::string& path) {
  std::string stem = path;
  if (stem.size() >= 4 && stem.substr(stem.size() - 4) == ".npy") stem.resize(stem.size() - 4);
  return stem + ".labels.npy";
}

}  // namespace internal

Schema Dataset::table_schema() const {
  if (!options_.float32_numbers || options_.format != Format::kCsv) return schema_;
  std::vector<Field> fields = schema_.fields();
  for (auto& f : fields) {
    if (f.type == DataType::kFloat64 && f.name != options_.label_column)
      f.type = DataType::kFloat32;
  }
  return Schema(std::move(fields));
}

Table Dataset::ReadTable(Shard shard, ReadReport* report) const {
  const auto plan = Plan(shard);
  ReadReport part;
  part.files = static_cast<std::int64_t>(plan.size());
  part.empty_files = empty_files_;
  Table table;
  switch (options_.format) {
    case Format::kCsv: {
      CsvOptions o = options_.csv;
      o.row_ids = true;
      internal::CsvWindowSource source(internal::CsvInputsFor(*this, plan, data_start_, data_line_),
                                       o, internal::kWindowBytes);
      internal::CsvPipeline pipeline(&source, o, schema_.num_fields());
      internal::TableBuilder builder(table_schema(), true);
      std::uint64_t expected = 0;
      for (const auto& r : plan) {
        if (!files_[static_cast<std::size_t>(r.file)].compressed) expected += r.end - r.begin;
      }
      pipeline.ReadTable(&builder, expected, std::numeric_limits<std::uint64_t>::max(), &part);
      table = builder.Take();
      break;
    }
    case Format::kNpy:
    case Format::kLibsvm: {
      // Labels stored beside the features (NPY's <stem>.labels.npy, LIBSVM's first field)
      // become the column options_.label_column.
      DenseSpec spec;
      if (HasSeparateLabels()) spec.label = options_.label_column;
      const DenseData d = ReadDense(spec, shard, &part);
      table = internal::DenseToTable(d);
      part.rows = d.rows();
      break;
    }
    case Format::kAuto:
      ESCALA_ASSERT(false);
  }
  internal::WarnIfSkipped(files_.front().path, part);
  if (report != nullptr) report->Merge(part);
  return table;
}

bool Dataset::HasSeparateLabels() const {
  if (options_.label_column.empty() || schema_.Find(options_.label_column) >= 0) return false;
  if (options_.format == Format::kLibsvm) return true;
  if (options_.format != Format::kNpy) return false;
  return std::all_of(files_.begin(), files_.end(),
                     [](const DataFile& f) { return fs::exists(internal::NpyLabelsPath(f.path)); });
}

DenseData Dataset::ReadDense(const DenseSpec& spec, Shard shard, ReadReport* report) const {
  const auto plan = Plan(shard);
  ReadReport part;
  part.files = static_cast<std::int64_t>(plan.size());
  part.empty_files = empty_files_;
  DenseData out;
  switch (options_.format) {
    case Format::kCsv: {
      const CsvOptions& o = options_.csv;
      const internal::DenseTarget target = internal::MakeDenseTarget(schema_, spec);
      internal::CsvWindowSource source(internal::CsvInputsFor(*this, plan, data_start_, data_line_),
                                       o, internal::kDenseWindowBytes);
      internal::CsvPipeline pipeline(&source, o, schema_.num_fields());
      std::uint64_t expected = 0;
      for (const auto& r : plan) {
        if (!files_[static_cast<std::size_t>(r.file)].compressed) expected += r.end - r.begin;
      }
      out.feature_names = target.feature_names;
      out.label_name = target.label_name;
      pipeline.ReadDense(target, spec.row_ids, expected, std::numeric_limits<std::uint64_t>::max(),
                         &out, &part);
      break;
    }
    case Format::kNpy: {
      DenseSpec s = spec;
      if (!spec.label.empty()) s.label.clear();  // labels come from the companion files
      const std::vector<std::string> features = ResolveFeatures(schema_, s);
      std::vector<int> cols;
      for (const auto& f : features) cols.push_back(schema_.Index(f));
      std::int64_t total = 0;
      std::vector<NpyHeader> headers;
      std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
      for (const auto& r : plan) {
        headers.push_back(
            internal::ReadNpyFileHeader(files_[static_cast<std::size_t>(r.file)].path));
        std::int64_t a, b;
        internal::NpyRowRange(r, headers.back(), &a, &b);
        ranges.emplace_back(a, b);
        total += b - a;
      }
      const std::int64_t all_cols = schema_.num_fields();
      const bool identity = static_cast<std::int64_t>(cols.size()) == all_cols &&
                            std::is_sorted(cols.begin(), cols.end());
      out.features.Resize(total, static_cast<std::int64_t>(cols.size()));
      MatrixF scratch;
      std::int64_t at = 0;
      for (std::size_t k = 0; k < plan.size(); ++k) {
        const auto& r = plan[k];
        const std::string& path = files_[static_cast<std::size_t>(r.file)].path;
        const auto [a, b] = ranges[k];
        if (b > a) {
          if (identity) {
            internal::ReadNpyRows(path, headers[k], a, b - a, out.features.row(at));
          } else {
            scratch.Resize(b - a, all_cols);
            internal::ReadNpyRows(path, headers[k], a, b - a, scratch.data());
            for (std::int64_t i = 0; i < b - a; ++i) {
              for (std::size_t j = 0; j < cols.size(); ++j) {
                out.features(at + i, static_cast<std::int64_t>(j)) = scratch(i, cols[j]);
              }
            }
          }
          if (!spec.label.empty()) {
            const std::string lp = internal::NpyLabelsPath(path);
            ESCALA_CHECK(fs::exists(lp), kNotFound,
                         "{}: a label was requested, but the labels file {} does not exist", path,
                         lp);
            const NpyHeader lh = internal::ReadNpyFileHeader(lp);
            ESCALA_CHECK(internal::NpyRows(lh) == internal::NpyRows(headers[k]) &&
                             internal::NpyCols(lh) == 1,
                         kInvalidArgument, "{}: {} labels for {} rows", lp, internal::NpyRows(lh),
                         internal::NpyRows(headers[k]));
            const std::size_t old = out.labels.size();
            out.labels.resize(old + static_cast<std::size_t>(b - a));
            internal::ReadNpyRows(lp, lh, a, b - a, out.labels.data() + old);
          }
          const std::int64_t row_bytes =
              internal::NpyCols(headers[k]) * internal::NpyItemSize(headers[k].dtype);
          for (std::int64_t i = a; i < b && spec.row_ids; ++i) {
            out.row_ids.push_back(
                MakeRowId(static_cast<std::uint64_t>(r.file),
                          static_cast<std::uint64_t>(headers[k].data_offset + i * row_bytes)));
          }
        }
        at += b - a;
      }
      out.feature_names = features;
      out.label_name = spec.label;
      part.rows = total;
      break;
    }
    case Format::kLibsvm: {
      const SparseData s = ReadSparse(shard, &part);
      ESCALA_CHECK(spec.features.empty() && spec.exclude.empty(), kInvalidArgument,
                   "LIBSVM columns have no names to select");
      const double bytes = static_cast<double>(s.x.rows) * static_cast<double>(s.x.cols) * 4;
      ESCALA_CHECK(bytes <= MaxDenseBytes() && s.x.cols <= kMaxDenseColumns, kResourceExhausted,
                   "{}: LIBSVM data of {} rows x {} features would take {:.1f} GiB as a dense "
                   "matrix (the limits are {:.1f} GiB, half this machine's memory, and {} "
                   "columns); a feature index that large is likely wrong",
                   files_.front().path, s.x.rows, s.x.cols, bytes / (1 << 30),
                   MaxDenseBytes() / (1 << 30), kMaxDenseColumns);
      out.features = s.x.ToDense();
      out.labels = s.labels;
      if (spec.row_ids) out.row_ids = s.row_ids;
      for (std::int64_t j = 0; j < s.x.cols; ++j)
        out.feature_names.push_back(fmt::format("f{}", j));
      out.label_name = spec.label.empty() ? "label" : spec.label;
      if (report != nullptr) report->Merge(part);
      return out;
    }
    case Format::kAuto:
      ESCALA_ASSERT(false);
  }
  internal::WarnIfSkipped(files_.front().path, part);
  if (report != nullptr) report->Merge(part);
  return out;
}

SparseData Dataset::ReadSparse(Shard shard, ReadReport* report) const {
  ESCALA_CHECK(options_.format == Format::kLibsvm, kInvalidArgument,
               "ReadSparse() reads LIBSVM datasets; this one is {}", FormatName(options_.format));
  const auto plan = Plan(shard);
  ESCALA_CHECK(shard.world == 1 || options_.libsvm.num_features > 0, kInvalidArgument,
               "reading a shard of a LIBSVM dataset needs num_features, so that every shard has "
               "the same width");
  SparseData out;
  ReadReport part;
  part.files = static_cast<std::int64_t>(plan.size());
  part.empty_files = empty_files_;
  std::uint64_t expected = 0;
  for (const auto& r : plan) {
    if (!files_[static_cast<std::size_t>(r.file)].compressed) expected += r.end - r.begin;
  }
  internal::ReadLibsvmInputs(internal::CsvInputsFor(*this, plan, data_start_, data_line_),
                             options_.libsvm, true, expected, &out, &part);
  if (report != nullptr) report->Merge(part);
  return out;
}

}  // namespace escala::data
