#include "escala/data/table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "escala/core/error.h"
#include "escala/core/parallel.h"

namespace escala::data {

std::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt64:
      return "int64";
    case DataType::kCategorical:
      return "categorical";
  }
  return "unknown";
}

DataType ParseDataType(std::string_view name) {
  if (name == "float32" || name == "f32" || name == "float") return DataType::kFloat32;
  if (name == "float64" || name == "f64" || name == "double") return DataType::kFloat64;
  if (name == "int64" || name == "i64" || name == "int") return DataType::kInt64;
  if (name == "categorical" || name == "category" || name == "string" || name == "str") {
    return DataType::kCategorical;
  }
  Throw(ErrorCode::kInvalidArgument,
        "unknown column type '{}': expected float32, float64, int64 or categorical", name);
}

// ---------------------------------------------------------------------------------------------
// Schema

Schema::Schema(std::vector<Field> fields) : fields_(std::move(fields)) {
  index_.reserve(fields_.size());
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    index_.emplace(fields_[i].name, static_cast<int>(i));
  }
}

void Schema::Append(Field field) {
  index_.emplace(field.name, static_cast<int>(fields_.size()));
  fields_.push_back(std::move(field));
}

std::string Schema::FirstDuplicate() const {
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (index_.at(fields_[i].name) != static_cast<int>(i)) return fields_[i].name;
  }
  return "";
}

int Schema::Find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? -1 : it->second;
}

int Schema::Index(std::string_view name) const {
  const int i = Find(name);
  if (i < 0) {
    std::string names;
    for (std::size_t k = 0; k < fields_.size(); ++k) {
      if (k == 12 && fields_.size() > 16) {
        names += fmt::format(", ... ({} more)", fields_.size() - k);
        break;
      }
      names += (k == 0 ? "" : ", ") + fields_[k].name;
    }
    Throw(ErrorCode::kNotFound, "no column named '{}' (columns: {})", name,
          names.empty() ? "none" : names);
  }
  return i;
}

std::string Schema::Diff(const Schema& expected) const {
  const std::size_t n = std::min(fields_.size(), expected.fields_.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (fields_[i] != expected.fields_[i]) {
      return fmt::format("column {}: expected '{}' {}, found '{}' {}", i + 1,
                         expected.fields_[i].name, DataTypeName(expected.fields_[i].type),
                         fields_[i].name, DataTypeName(fields_[i].type));
    }
  }
  if (fields_.size() != expected.fields_.size()) {
    return fmt::format("expected {} columns, found {}", expected.fields_.size(), fields_.size());
  }
  return "";
}

namespace {
std::string EscapeName(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '%' || c == '\n' || c == '\r') {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string UnescapeName(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      ESCALA_CHECK(i + 2 < text.size(), kInvalidArgument, "schema: truncated escape in '{}'", text);
      const auto hex = [&](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        Throw(ErrorCode::kInvalidArgument, "schema: bad escape in '{}'", text);
      };
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}
}  // namespace

std::string Schema::Serialize() const {
  std::string out = "escala-schema 1\n";
  for (const auto& f : fields_) {
    out += fmt::format("{} {}\n", DataTypeName(f.type), EscapeName(f.name));
  }
  return out;
}

Schema Schema::Parse(std::string_view text) {
  constexpr std::string_view kMagic = "escala-schema 1\n";
  ESCALA_CHECK(text.substr(0, kMagic.size()) == kMagic, kInvalidArgument,
               "not a serialised schema (expected it to start with 'escala-schema 1')");
  text.remove_prefix(kMagic.size());
  std::vector<Field> fields;
  int line = 2;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    ESCALA_CHECK(nl != std::string_view::npos, kInvalidArgument,
                 "schema line {}: missing final newline", line);
    const std::string_view l = text.substr(0, nl);
    const std::size_t sp = l.find(' ');
    ESCALA_CHECK(sp != std::string_view::npos, kInvalidArgument,
                 "schema line {}: expected '<type> <name>', got '{}'", line, l);
    fields.push_back({UnescapeName(l.substr(sp + 1)), ParseDataType(l.substr(0, sp))});
    text.remove_prefix(nl + 1);
    ++line;
  }
  return Schema(std::move(fields));
}

std::string Schema::ToString() const {
  std::string out;
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    out +=
        fmt::format("{}{}:{}", i == 0 ? "" : ", ", fields_[i].name, DataTypeName(fields_[i].type));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Column

Column::Column(std::string name, DataType type, std::int64_t rows)
    : name_(std::move(name)), type_(type) {
  switch (type) {
    case DataType::kFloat32:
      values_ = Storage<float>();
      break;
    case DataType::kFloat64:
      values_ = Storage<double>();
      break;
    case DataType::kInt64:
      values_ = Storage<std::int64_t>();
      break;
    case DataType::kCategorical:
      values_ = Storage<std::int32_t>();
      break;
  }
  Resize(rows);
}

namespace {
[[noreturn]] void WrongType(const Column& c, std::string_view wanted) {
  Throw(ErrorCode::kInvalidArgument, "column '{}' is {}, not {}", c.name(), DataTypeName(c.type()),
        wanted);
}
}  // namespace

std::span<const float> Column::f32() const {
  if (type_ != DataType::kFloat32) WrongType(*this, "float32");
  return std::get<Storage<float>>(values_);
}
std::span<const double> Column::f64() const {
  if (type_ != DataType::kFloat64) WrongType(*this, "float64");
  return std::get<Storage<double>>(values_);
}
std::span<const std::int64_t> Column::i64() const {
  if (type_ != DataType::kInt64) WrongType(*this, "int64");
  return std::get<Storage<std::int64_t>>(values_);
}
std::span<const std::int32_t> Column::codes() const {
  if (type_ != DataType::kCategorical) WrongType(*this, "categorical");
  return std::get<Storage<std::int32_t>>(values_);
}
std::span<float> Column::mutable_f32() {
  if (type_ != DataType::kFloat32) WrongType(*this, "float32");
  return std::get<Storage<float>>(values_);
}
std::span<double> Column::mutable_f64() {
  if (type_ != DataType::kFloat64) WrongType(*this, "float64");
  return std::get<Storage<double>>(values_);
}
std::span<std::int64_t> Column::mutable_i64() {
  if (type_ != DataType::kInt64) WrongType(*this, "int64");
  return std::get<Storage<std::int64_t>>(values_);
}
std::span<std::int32_t> Column::mutable_codes() {
  if (type_ != DataType::kCategorical) WrongType(*this, "categorical");
  return std::get<Storage<std::int32_t>>(values_);
}

std::string_view Column::category(std::int64_t i) const {
  const std::int32_t code = codes()[static_cast<std::size_t>(i)];
  if (code < 0) return {};
  return dictionary_[static_cast<std::size_t>(code)];
}

MatrixView<const float> Column::AsMatrixView() const {
  const auto v = f32();
  return MatrixView<const float>(v.data(), size_, 1);
}

double Column::GetDouble(std::int64_t i) const {
  if (is_missing(i)) return std::numeric_limits<double>::quiet_NaN();
  const auto k = static_cast<std::size_t>(i);
  switch (type_) {
    case DataType::kFloat32:
      return std::get<Storage<float>>(values_)[k];
    case DataType::kFloat64:
      return std::get<Storage<double>>(values_)[k];
    case DataType::kInt64:
      return static_cast<double>(std::get<Storage<std::int64_t>>(values_)[k]);
    case DataType::kCategorical:
      return std::get<Storage<std::int32_t>>(values_)[k];
  }
  return 0;
}

void Column::SetMissing(std::int64_t i) {
  const auto k = static_cast<std::size_t>(i);
  if (missing_.empty()) missing_.assign(static_cast<std::size_t>(size_), 0);
  if (missing_[k] == 0) {
    missing_[k] = 1;
    ++missing_count_;
  }
  std::visit(
      [&](auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_floating_point_v<T>) {
          v[k] = std::numeric_limits<T>::quiet_NaN();
        } else if constexpr (std::is_same_v<T, std::int32_t>) {
          v[k] = -1;
        } else {
          v[k] = 0;
        }
      },
      values_);
}

void Column::SetMissingMask(std::vector<std::uint8_t> mask) {
  ESCALA_CHECK(mask.empty() || static_cast<std::int64_t>(mask.size()) == size_, kInvalidArgument,
               "column '{}': missing mask has {} entries for {} rows", name_, mask.size(), size_);
  missing_ = std::move(mask);
  missing_count_ = 0;
  for (const auto m : missing_) missing_count_ += m != 0 ? 1 : 0;
}

void Column::Resize(std::int64_t rows) {
  ESCALA_CHECK(rows >= 0, kInvalidArgument, "negative column size {}", rows);
  std::visit(
      [&](auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        v.resize(static_cast<std::size_t>(rows), T{});
      },
      values_);
  if (!missing_.empty()) {
    missing_.resize(static_cast<std::size_t>(rows), 0);
    missing_count_ = 0;
    for (const auto m : missing_) missing_count_ += m != 0 ? 1 : 0;
  }
  size_ = rows;
}

void Column::Grow(std::int64_t rows, const std::shared_ptr<internal::ColumnBlock>& block) {
  std::visit(
      [&](auto& v) {
        using V = std::decay_t<decltype(v)>;
        if (v.capacity() >= static_cast<std::size_t>(rows)) return;
        V moved{typename V::allocator_type(block)};
        moved.reserve(static_cast<std::size_t>(rows));
        moved.assign(v.begin(), v.end());
        v = std::move(moved);
      },
      values_);
  Grow(rows);
}

void Column::Grow(std::int64_t rows) {
  ESCALA_CHECK(rows >= size_, kInvalidArgument, "column '{}': Grow({}) below its {} rows", name_,
               rows, size_);
  std::visit([&](auto& v) { v.resize(static_cast<std::size_t>(rows)); }, values_);
  if (!missing_.empty()) missing_.resize(static_cast<std::size_t>(rows), 0);
  size_ = rows;
}

namespace internal {

ColumnBlock::ColumnBlock(std::size_t bytes) {
  if (bytes == 0) return;
  // Aligned on a huge page: every huge page but the last partial one can be advised.
  base_ = static_cast<char*>(::operator new (bytes, std::align_val_t{kHugePageBytes}));
  size_ = bytes;
  AdviseWholeHugePages(base_, bytes);
}

ColumnBlock::~ColumnBlock() {
  if (base_ != nullptr) ::operator delete (base_, std::align_val_t{kHugePageBytes});
}

void* ColumnBlock::Take(std::size_t bytes) noexcept {
  constexpr std::size_t kAlign = 64;
  std::size_t used = used_.load(std::memory_order_relaxed);
  std::size_t at = 0;
  do {
    at = (used + kAlign - 1) / kAlign * kAlign;
    if (bytes == 0 || at > size_ || size_ - at < bytes) return nullptr;
  } while (!used_.compare_exchange_weak(used, at + bytes, std::memory_order_relaxed));
  return base_ + at;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Table

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {
  if (!columns_.empty()) num_rows_ = columns_[0].size();
  for (const auto& c : columns_) {
    ESCALA_CHECK(c.size() == num_rows_, kInvalidArgument,
                 "column '{}' has {} rows, but column '{}' has {}", c.name(), c.size(),
                 columns_[0].name(), num_rows_);
  }
  RebuildSchema();
}

void Table::RebuildSchema() {
  std::vector<Field> fields;
  fields.reserve(columns_.size());
  for (const auto& c : columns_) fields.push_back({c.name(), c.type()});
  schema_ = Schema(std::move(fields));
  ESCALA_CHECK(schema_.unique_names(), kInvalidArgument, "duplicate column name '{}'",
               schema_.FirstDuplicate());
}

const Column& Table::column(std::string_view name) const {
  return columns_[static_cast<std::size_t>(schema_.Index(name))];
}

void Table::AddColumn(Column column) {
  if (columns_.empty()) {
    num_rows_ = column.size();
  } else {
    ESCALA_CHECK(column.size() == num_rows_, kInvalidArgument,
                 "column '{}' has {} rows; the table has {}", column.name(), column.size(),
                 num_rows_);
  }
  ESCALA_CHECK(schema_.Find(column.name()) < 0, kInvalidArgument, "duplicate column name '{}'",
               column.name());
  schema_.Append({column.name(), column.type()});
  columns_.push_back(std::move(column));
}

void Table::set_row_ids(std::vector<std::uint64_t> ids) {
  ESCALA_CHECK(ids.empty() || static_cast<std::int64_t>(ids.size()) == num_rows_, kInvalidArgument,
               "{} row ids for {} rows", ids.size(), num_rows_);
  row_ids_ = std::move(ids);
}

Table Table::Slice(std::int64_t begin, std::int64_t count) const {
  ESCALA_CHECK(begin >= 0 && count >= 0 && begin + count <= num_rows_, kOutOfRange,
               "slice [{}, {}) outside a table of {} rows", begin, begin + count, num_rows_);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) rows[static_cast<std::size_t>(i)] = begin + i;
  return Take(rows);
}

void TableSlices::ForEachChunk(const std::function<void(const Table&)>& visit) {
  const std::int64_t n = table_.num_rows();
  const std::int64_t step = std::max<std::int64_t>(chunk_rows_, 1);
  for (std::int64_t b = 0; b < n; b += step) {
    Table chunk = table_.Slice(b, std::min(step, n - b));
    if (!table_.row_ids().empty()) {
      const auto ids = table_.row_ids().subspan(static_cast<std::size_t>(b),
                                                static_cast<std::size_t>(chunk.num_rows()));
      chunk.set_row_ids({ids.begin(), ids.end()});
    }
    visit(chunk);
  }
}

namespace {

// Appends `src` to `dst` from row `at`, re-coding categories into dst's dictionary.
void CopyColumnInto(const Column& src, std::int64_t at, Column* dst,
                    std::unordered_map<std::string, std::int32_t>* codes) {
  const auto n = static_cast<std::size_t>(src.size());
  const auto a = static_cast<std::size_t>(at);
  switch (src.type()) {
    case DataType::kFloat32:
      std::copy_n(src.f32().begin(), n, dst->mutable_f32().begin() + a);
      break;
    case DataType::kFloat64:
      std::copy_n(src.f64().begin(), n, dst->mutable_f64().begin() + a);
      break;
    case DataType::kInt64:
      std::copy_n(src.i64().begin(), n, dst->mutable_i64().begin() + a);
      break;
    case DataType::kCategorical: {
      std::vector<std::int32_t> remap;
      for (const auto& name : src.dictionary()) {
        auto [it, added] = codes->emplace(name, static_cast<std::int32_t>(codes->size()));
        if (added) dst->mutable_dictionary().push_back(name);
        remap.push_back(it->second);
      }
      auto out = dst->mutable_codes();
      for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t c = src.codes()[i];
        out[a + i] = c >= 0 && static_cast<std::size_t>(c) < remap.size() ? remap[c] : 0;
      }
      break;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (src.is_missing(static_cast<std::int64_t>(i)))
      dst->SetMissing(at + static_cast<std::int64_t>(i));
  }
}

}  // namespace

Table ConcatTables(std::span<const Table> parts) {
  if (parts.empty()) return Table();
  std::int64_t rows = 0;
  bool ids = true;
  for (const auto& p : parts) {
    ESCALA_CHECK(p.schema() == parts[0].schema(), kInvalidArgument,
                 "tables to concatenate differ: {}", p.schema().Diff(parts[0].schema()));
    rows += p.num_rows();
    ids = ids && (p.row_ids().size() == static_cast<std::size_t>(p.num_rows()));
  }
  std::vector<Column> cols;
  for (std::size_t c = 0; c < parts[0].columns().size(); ++c) {
    const Column& first = parts[0].columns()[c];
    Column col(first.name(), first.type(), rows);
    std::unordered_map<std::string, std::int32_t> codes;
    std::int64_t at = 0;
    for (const auto& p : parts) {
      CopyColumnInto(p.columns()[c], at, &col, &codes);
      at += p.num_rows();
    }
    cols.push_back(std::move(col));
  }
  Table out(std::move(cols));
  if (ids) {
    std::vector<std::uint64_t> all;
    for (const auto& p : parts) all.insert(all.end(), p.row_ids().begin(), p.row_ids().end());
    out.set_row_ids(std::move(all));
  }
  return out;
}

Table Table::Take(std::span<const std::int64_t> rows) const {
  std::vector<Column> out;
  const auto n = static_cast<std::int64_t>(rows.size());
  for (const auto& c : columns_) {
    Column col(c.name(), c.type(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t r = rows[static_cast<std::size_t>(i)];
      ESCALA_CHECK(r >= 0 && r < num_rows_, kOutOfRange, "row {} outside a table of {} rows", r,
                   num_rows_);
    }
    switch (c.type()) {
      case DataType::kFloat32: {
        auto dst = col.mutable_f32();
        const auto src = c.f32();
        for (std::int64_t i = 0; i < n; ++i) dst[i] = src[rows[i]];
        break;
      }
      case DataType::kFloat64: {
        auto dst = col.mutable_f64();
        const auto src = c.f64();
        for (std::int64_t i = 0; i < n; ++i) dst[i] = src[rows[i]];
        break;
      }
      case DataType::kInt64: {
        auto dst = col.mutable_i64();
        const auto src = c.i64();
        for (std::int64_t i = 0; i < n; ++i) dst[i] = src[rows[i]];
        break;
      }
      case DataType::kCategorical: {
        auto dst = col.mutable_codes();
        const auto src = c.codes();
        for (std::int64_t i = 0; i < n; ++i) dst[i] = src[rows[i]];
        col.mutable_dictionary() = c.dictionary();
        break;
      }
    }
    if (c.missing_count() > 0) {
      std::vector<std::uint8_t> mask(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) mask[i] = c.missing_mask()[rows[i]];
      col.SetMissingMask(std::move(mask));
    }
    out.push_back(std::move(col));
  }
  Table t(std::move(out));
  t.num_rows_ = n;
  if (!row_ids_.empty()) {
    std::vector<std::uint64_t> ids(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) ids[i] = row_ids_[rows[i]];
    t.row_ids_ = std::move(ids);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Dense copies

void CopyColumnsToMatrix(const Table& table, std::span<const std::string> columns, MatrixF* out) {
  struct Src {
    DataType type;
    const void* data;
    const std::uint8_t* missing;
  };
  std::vector<Src> srcs;
  for (const auto& name : columns) {
    const Column& c = table.column(name);
    ESCALA_CHECK(IsNumeric(c.type()), kInvalidArgument,
                 "column '{}' is categorical; encode it (e.g. one-hot) before using it as a "
                 "numeric feature",
                 name);
    Src s{c.type(), nullptr, c.missing_count() > 0 ? c.missing_mask().data() : nullptr};
    switch (c.type()) {
      case DataType::kFloat32:
        s.data = c.f32().data();
        break;
      case DataType::kFloat64:
        s.data = c.f64().data();
        break;
      case DataType::kInt64:
        s.data = c.i64().data();
        break;
      case DataType::kCategorical:
        break;
    }
    srcs.push_back(s);
  }
  const std::int64_t rows = table.num_rows();
  const auto cols = static_cast<std::int64_t>(srcs.size());
  out->Resize(rows, cols);
  if (rows == 0 || cols == 0) return;
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  ParallelFor(static_cast<std::size_t>(rows), 4096, [&](std::size_t b, std::size_t e) {
    // Row blocks, column by column: reads stream through each column, writes stay in cache.
    for (std::int64_t j = 0; j < cols; ++j) {
      const Src& s = srcs[static_cast<std::size_t>(j)];
      float* dst = out->data() + j;
      for (std::size_t i = b; i < e; ++i) {
        float v;
        switch (s.type) {
          case DataType::kFloat32:
            v = static_cast<const float*>(s.data)[i];
            break;
          case DataType::kFloat64:
            v = static_cast<float>(static_cast<const double*>(s.data)[i]);
            break;
          default:
            v = static_cast<float>(static_cast<const std::int64_t*>(s.data)[i]);
            break;
        }
        if (s.missing != nullptr && s.missing[i] != 0) v = kNaN;
        dst[static_cast<std::int64_t>(i) * cols] = v;
      }
    }
  });
}

std::vector<std::string> NumericColumnNames(const Table& table,
                                            std::span<const std::string> exclude) {
  std::vector<std::string> names;
  for (const auto& f : table.schema().fields()) {
    if (!IsNumeric(f.type)) continue;
    if (std::find(exclude.begin(), exclude.end(), f.name) != exclude.end()) continue;
    names.push_back(f.name);
  }
  return names;
}

std::vector<float> ColumnToFloat(const Table& table, std::string_view column) {
  const Column& c = table.column(column);
  ESCALA_CHECK(IsNumeric(c.type()), kInvalidArgument,
               "column '{}' is categorical, a numeric column is needed here", column);
  std::vector<float> out(static_cast<std::size_t>(c.size()));
  for (std::int64_t i = 0; i < c.size(); ++i) {
    out[static_cast<std::size_t>(i)] = static_cast<float>(c.GetDouble(i));
  }
  return out;
}

}  // namespace escala::data
