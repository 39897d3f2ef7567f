#include "escala/data/stream.h"

#include <algorithm>
#include <limits>

#include "data/csv_internal.h"
#include "data/dataset_internal.h"
#include "data/npy_internal.h"
#include "escala/core/error.h"
#include "escala/data/split.h"

namespace escala::data {

struct DatasetStream::Impl {
  const Dataset& ds;
  StreamOptions options;
  std::vector<FileRange> plan;
  ReadReport report;
  // CSV
  std::unique_ptr<internal::CsvWindowSource> source;
  std::unique_ptr<internal::CsvPipeline> pipeline;
  std::unique_ptr<internal::TableBuilder> builder;
  internal::DenseTarget target;
  DenseSpec target_spec;
  bool have_target = false;
  // NPY
  std::vector<int> order;
  std::size_t range_pos = 0;
  std::int64_t row_pos = -1;  // next row within the current range, -1 before it starts
  std::vector<NpyHeader> headers;
  MatrixF scratch;

  Impl(const Dataset& d, Shard shard, StreamOptions o) : ds(d), options(o), plan(d.Plan(shard)) {
    ESCALA_CHECK(options.block_bytes >= 1024, kInvalidArgument,
                 "stream block size must be at least 1 KiB, got {}", options.block_bytes);
    for (int i = 0; i < static_cast<int>(plan.size()); ++i) order.push_back(i);
    if (ds.format() == Format::kCsv) {
      source = std::make_unique<internal::CsvWindowSource>(
          internal::CsvInputsFor(ds, plan, ds.data_start_, ds.data_line_), ds.options().csv,
          std::min(options.block_bytes, internal::kWindowBytes));
      pipeline = std::make_unique<internal::CsvPipeline>(source.get(), ds.options().csv,
                                                         ds.schema().num_fields());
    } else if (ds.format() == Format::kNpy) {
      for (const auto& r : plan) {
        headers.push_back(
            internal::ReadNpyFileHeader(ds.files()[static_cast<std::size_t>(r.file)].path));
      }
    } else {
      Throw(ErrorCode::kUnimplemented,
            "streaming reads CSV and NPY datasets; read LIBSVM data with Dataset::ReadSparse()");
    }
  }

  const internal::DenseTarget& Target(const DenseSpec& spec) {
    if (!have_target || spec.label != target_spec.label || spec.features != target_spec.features ||
        spec.exclude != target_spec.exclude) {
      target = internal::MakeDenseTarget(ds.schema(), spec);
      target_spec = spec;
      have_target = true;
    }
    return target;
  }

  // NPY: the next block of rows into *out; false at the end.
  bool NextNpy(const DenseSpec& spec, DenseData* out) {
    DenseSpec s = spec;
    s.label.clear();
    const std::vector<std::string> features = ResolveFeatures(ds.schema(), s);
    std::vector<int> cols;
    for (const auto& f : features) cols.push_back(ds.schema().Index(f));
    const std::int64_t all = ds.schema().num_fields();
    const std::int64_t row_bytes = std::max<std::int64_t>(1, all * 4);
    const std::int64_t max_rows =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(options.block_bytes) / row_bytes);
    out->features.Resize(0, static_cast<std::int64_t>(cols.size()));
    out->labels.clear();
    out->row_ids.clear();
    out->feature_names = features;
    out->label_name = spec.label;
    while (range_pos < order.size()) {
      const auto k = static_cast<std::size_t>(order[range_pos]);
      const FileRange& r = plan[k];
      const NpyHeader& h = headers[k];
      std::int64_t first, last;
      internal::NpyRowRange(r, h, &first, &last);
      if (row_pos < 0) row_pos = first;
      if (row_pos >= last) {
        ++range_pos;
        row_pos = -1;
        continue;
      }
      const std::int64_t n = std::min(max_rows, last - row_pos);
      const std::string& path = ds.files()[static_cast<std::size_t>(r.file)].path;
      scratch.Resize(n, all);
      internal::ReadNpyRows(path, h, row_pos, n, scratch.data());
      out->features.Resize(n, static_cast<std::int64_t>(cols.size()));
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < cols.size(); ++j) {
          out->features(i, static_cast<std::int64_t>(j)) = scratch(i, cols[j]);
        }
      }
      if (!spec.label.empty()) {
        const std::string lp = internal::NpyLabelsPath(path);
        const NpyHeader lh = internal::ReadNpyFileHeader(lp);
        ESCALA_CHECK(internal::NpyRows(lh) == internal::NpyRows(h), kInvalidArgument,
                     "{}: {} labels for {} rows", lp, internal::NpyRows(lh), internal::NpyRows(h));
        out->labels.resize(static_cast<std::size_t>(n));
        internal::ReadNpyRows(lp, lh, row_pos, n, out->labels.data());
      }
      const std::int64_t file_row_bytes = internal::NpyCols(h) * internal::NpyItemSize(h.dtype);
      for (std::int64_t i = 0; i < n; ++i) {
        out->row_ids.push_back(
            MakeRowId(static_cast<std::uint64_t>(r.file),
                      static_cast<std::uint64_t>(h.data_offset + (row_pos + i) * file_row_bytes)));
      }
      row_pos += n;
      report.rows += n;
      report.bytes += n * file_row_bytes;
      return true;
    }
    return false;
  }
};

DatasetStream::DatasetStream(const Dataset& dataset, Shard shard, StreamOptions options)
    : impl_(std::make_unique<Impl>(dataset, shard, options)) {
  impl_->report.files = static_cast<std::int64_t>(impl_->plan.size());
}

DatasetStream::~DatasetStream() = default;

bool DatasetStream::Next(Table* chunk) {
  Impl& s = *impl_;
  if (s.ds.format() == Format::kNpy) {
    // Labels kept beside the features (<stem>.labels.npy) become the label column, as in
    // Dataset::ReadTable.
    DenseSpec spec;
    if (s.ds.HasSeparateLabels()) spec.label = s.ds.options().label_column;
    DenseData d;
    if (!s.NextNpy(spec, &d)) return false;
    *chunk = internal::DenseToTable(d);
    return true;
  }
  if (!s.builder) s.builder = std::make_unique<internal::TableBuilder>(s.ds.table_schema(), true);
  const bool any = s.pipeline->ReadTable(s.builder.get(), s.options.block_bytes,
                                         s.options.block_bytes, &s.report);
  *chunk = s.builder->Take();
  return any;
}

bool DatasetStream::NextDense(const DenseSpec& spec, DenseData* chunk) {
  Impl& s = *impl_;
  if (s.ds.format() == Format::kNpy) return s.NextNpy(spec, chunk);
  const internal::DenseTarget& target = s.Target(spec);
  chunk->features.Resize(0, target.cols);
  chunk->labels.clear();
  chunk->row_ids.clear();
  chunk->feature_names = target.feature_names;
  chunk->label_name = target.label_name;
  return s.pipeline->ReadDense(target, true, s.options.block_bytes, s.options.block_bytes, chunk,
                               &s.report);
}

void DatasetStream::Rewind() {
  Impl& s = *impl_;
  if (s.source) s.source->SetOrder(s.order);
  s.range_pos = 0;
  s.row_pos = -1;
}

void DatasetStream::SetRangeOrder(std::vector<int> order) {
  Impl& s = *impl_;
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    ESCALA_CHECK(sorted[i] == static_cast<int>(i) && sorted.size() == s.plan.size(),
                 kInvalidArgument, "range order must be a permutation of 0..{}",
                 static_cast<int>(s.plan.size()) - 1);
  }
  s.order = std::move(order);
  Rewind();
}

int DatasetStream::num_ranges() const {
  return static_cast<int>(impl_->plan.size());
}

const ReadReport& DatasetStream::report() const {
  return impl_->report;
}

StreamedTable::StreamedTable(const Dataset& dataset, Shard shard, StreamOptions options)
    : schema_(dataset.table_schema()), stream_(dataset, shard, options) {
  ESCALA_CHECK(dataset.format() != Format::kLibsvm, kInvalidArgument,
               "{}: LIBSVM data does not stream as tables (convert it with escala convert)",
               dataset.files().empty() ? std::string("dataset") : dataset.files()[0].path);
  if (dataset.HasSeparateLabels()) {
    schema_.Append({dataset.options().label_column, DataType::kFloat32, ""});
  }
}

void StreamedTable::ForEachChunk(const std::function<void(const Table&)>& visit) {
  stream_.Rewind();
  while (stream_.Next(&chunk_)) {
    if (chunk_.num_rows() > 0) visit(chunk_);
  }
}

}  // namespace escala::data
