// The CSV engine: tokenising RFC 4180 records, parsing record-aligned windows into dense rows or
// table columns, and the ordered pipeline that runs it in parallel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>

#include <fast_float/fast_float.h>

#include "data/csv_internal.h"
#include "data/input.h"
#include "data/number.h"
#include "data/ordered_stages.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"
#include "escala/core/parallel.h"
#include "escala/data/split.h"

namespace escala::data::internal {
namespace {

// ---------------------------------------------------------------------------------------------
// Tokenising.

struct MissingSet {
  std::vector<std::string> tokens;  // trimmed
  bool empty_is_missing = false;
  // Some token reads as a number (e.g. "-999"): tokens must be checked before parsing numbers.
  bool numeric_tokens = false;

  explicit MissingSet(const std::vector<std::string>& values) {
    for (const auto& v : values) {
      std::string_view t = v;
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
      if (t.empty()) {
        empty_is_missing = true;
      } else {
        tokens.emplace_back(t);
        double d;
        if (ParseReal(t.data(), t.data() + t.size(), &d) && !std::isnan(d)) numeric_tokens = true;
      }
    }
  }
  bool Contains(std::string_view s) const {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.empty()) return empty_is_missing;
    for (const auto& t : tokens) {
      if (t == s) return true;
    }
    return false;
  }
};

struct FieldRef {
  const char* b = nullptr;
  const char* e = nullptr;
  bool quoted = false;
  bool escaped = false;  // holds doubled quotes
  std::string_view view() const { return {b, static_cast<std::size_t>(e - b)}; }
};

// A syntax or value error in a record.
struct RecordError {
  const char* pos = nullptr;
  int field = -1;  // 0-based, -1 when not about a field
  std::string message;
};

// What the tokeniser needs: the text and the dialect.
struct Ctx {
  const char* data;
  const char* end;
  char delim;
  char quote;
  bool quotes_enabled;
  bool quoted_newlines;
  char comment;
  int num_fields;
  const MissingSet& missing;
  OnError on_error;

  Ctx(std::string_view text, const CsvOptions& o, int fields, const MissingSet& m)
      : data(text.data()),
        end(text.data() + text.size()),
        delim(o.delimiter),
        quote(o.quote),
        quotes_enabled(o.quote != '\0'),
        quoted_newlines(o.quoted_newlines),
        comment(o.comment),
        num_fields(fields),
        missing(m),
        on_error(o.on_error) {}
};

// Scans one field at p. Returns the position of its terminator (delimiter, '\r' of a CRLF, '\n',
// or end), or nullptr with *err set.
const char* ScanField(const Ctx& c, const char* p, FieldRef* f, RecordError* err) {
  f->quoted = false;
  f->escaped = false;
  if (c.quotes_enabled && p < c.end && *p == c.quote) {
    f->quoted = true;
    const char* q = p + 1;
    for (;;) {
      const void* hit = std::memchr(q, c.quote, static_cast<std::size_t>(c.end - q));
      const char* close = hit == nullptr ? c.end : static_cast<const char*>(hit);
      if (!c.quoted_newlines) {
        const void* nl = std::memchr(q, '\n', static_cast<std::size_t>(close - q));
        if (nl != nullptr) {
          err->pos = p;
          err->message =
              "unterminated quoted field (it reaches the end of the line, and "
              "quoted newlines are disabled)";
          return nullptr;
        }
      }
      if (hit == nullptr) {
        err->pos = p;
        err->message = "unterminated quoted field (no closing quote before the end of the file)";
        return nullptr;
      }
      if (close + 1 < c.end && close[1] == c.quote) {
        f->escaped = true;
        q = close + 2;
        continue;
      }
      f->b = p + 1;
      f->e = close;
      const char* after = close + 1;
      if (after == c.end || *after == c.delim || *after == '\n') return after;
      if (*after == '\r' && (after + 1 == c.end || after[1] == '\n')) return after;
      err->pos = after;
      err->message = fmt::format("unexpected {} after the closing quote of a quoted field",
                                 Quote(std::string_view(after, 1)));
      return nullptr;
    }
  }
  const char* q = p;
  while (q < c.end) {
    const char ch = *q;
    if (ch == c.delim || ch == '\n') break;
    if (c.quotes_enabled && ch == c.quote) {
      err->pos = q;
      err->message =
          "quote character inside an unquoted field (quote the whole field and "
          "double the quotes inside it)";
      return nullptr;
    }
    ++q;
  }
  f->b = p;
  f->e = q;
  if (f->e > f->b && f->e[-1] == '\r' && (q == c.end || *q == '\n')) --f->e;
  return q;
}

// After the last field: consumes the record terminator. Returns the next record start, or
// nullptr with *err set when more fields follow.
const char* EndRecord(const Ctx& c, const char* p, int fields_seen, RecordError* err) {
  if (p == c.end) return p;
  if (*p == '\n') return p + 1;
  if (*p == '\r' && (p + 1 == c.end || p[1] == '\n')) return p + 1 == c.end ? p + 1 : p + 2;
  // More fields: count them for the message.
  int count = fields_seen;
  const char* q = p;
  FieldRef f;
  RecordError ignored;
  while (q != nullptr && q < c.end && *q == c.delim) {
    ++count;
    q = ScanField(c, q + 1, &f, &ignored);
  }
  err->pos = p;
  err->field = -1;
  err->message = fmt::format("expected {} fields, found {}", c.num_fields, count);
  return nullptr;
}

// Skips the rest of a record after a value error: tokenises the remaining fields so that quoted
// newlines are honoured; falls back to the next physical line.
const char* SkipRecord(const Ctx& c, const char* p, const char* error_pos) {
  const char* q = p;
  FieldRef f;
  RecordError ignored;
  while (q != nullptr && q < c.end) {
    if (*q == c.delim) {
      q = ScanField(c, q + 1, &f, &ignored);
      continue;
    }
    if (*q == '\n') return q + 1;
    if (*q == '\r') {
      if (q + 1 == c.end) return c.end;
      if (q[1] == '\n') return q + 2;
    }
    break;
  }
  const char* from = std::max(p, error_pos);
  const void* nl = std::memchr(from, '\n', static_cast<std::size_t>(c.end - from));
  return nl == nullptr ? c.end : static_cast<const char*>(nl) + 1;
}

// Skips blank and comment lines at p. Returns the next position that starts a real record.
inline const char* SkipNonRecords(const Ctx& c, const char* p, const char* limit) {
  while (p < limit) {
    if (*p == '\n') {
      ++p;
    } else if (*p == '\r' && p + 1 < c.end && p[1] == '\n') {
      p += 2;
    } else if (c.comment != '\0' && *p == c.comment) {
      const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(c.end - p));
      p = nl == nullptr ? c.end : static_cast<const char*>(nl) + 1;
    } else {
      break;
    }
  }
  return p;
}

std::string UnescapeQuoted(const FieldRef& f, char quote) {
  std::string s;
  s.reserve(static_cast<std::size_t>(f.e - f.b));
  for (const char* q = f.b; q < f.e; ++q) {
    s.push_back(*q);
    if (*q == quote && q + 1 < f.e && q[1] == quote) ++q;
  }
  return s;
}

// Parses a non-fast-path numeric field: missing tokens give NaN. Returns false when it is not a
// number.
template <typename T>
bool ParseNumericField(const Ctx& c, const FieldRef& f, T* out, bool* missing) {
  *missing = false;
  if (c.missing.numeric_tokens && c.missing.Contains(f.view())) {
    *out = std::numeric_limits<T>::quiet_NaN();
    *missing = true;
    return true;
  }
  if (!f.escaped && ParseReal(f.b, f.e, out)) {
    if (std::isnan(*out)) *missing = true;
    return true;
  }
  if (c.missing.Contains(f.view())) {
    *out = std::numeric_limits<T>::quiet_NaN();
    *missing = true;
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Window parsing.

// Handles a record error under the policy. Returns false when parsing must stop.
bool OnRecordError(const Ctx& c, const RecordError& err, std::int64_t* skipped,
                   std::vector<WindowError>* errors, bool* failed) {
  const WindowError e{static_cast<std::size_t>(err.pos - c.data), err.field, err.message};
  if (c.on_error == OnError::kFail) {
    errors->push_back(e);
    *failed = true;
    return false;
  }
  ++*skipped;
  if (errors->size() < ReadReport::kMaxExamples) errors->push_back(e);
  return true;
}

// Parses the record at p (a record start that is not blank or a comment) into `row` and `label`.
// Returns the next record start, or nullptr with *err set; *resume is then where to skip from.
const char* ParseRecordDense(const Ctx& c, const DenseTarget& t, const char* p, float* row,
                             float* label, RecordError* err, const char** resume) {
  const char delim = c.delim;
  const int nf = c.num_fields;
  const int* target = t.field_to_col.data();
  FieldRef f;
  for (int j = 0; j < nf; ++j) {
    const int col = target[j];
    if (col != DenseTarget::kSkip && !c.missing.numeric_tokens) {
      float v;
      const char* q = ParseFloatPrefix(p, c.end, &v);
      if (q != nullptr) [[likely]] {
        if (j + 1 < nf) {
          if (q < c.end && *q == delim) [[likely]] {
            (col >= 0 ? row[col] : *label) = v;
            p = q + 1;
            continue;
          }
        } else if (q == c.end || *q == '\n' || *q == '\r') {
          (col >= 0 ? row[col] : *label) = v;
          p = q;
          continue;
        }
      }
    }
    // Slow path: quoted, padded, missing, '+'-signed, skipped, or malformed.
    const char* q = ScanField(c, p, &f, err);
    if (q == nullptr) {
      err->field = j;
      *resume = p;
      return nullptr;
    }
    if (col != DenseTarget::kSkip) {
      float v;
      bool missing;
      if (!ParseNumericField(c, f, &v, &missing)) {
        err->pos = p;
        err->field = j;
        err->message = fmt::format("cannot parse {} as a number", Quote(f.view()));
        *resume = q;
        return nullptr;
      }
      (col >= 0 ? row[col] : *label) = v;
    }
    if (j + 1 < nf) {
      if (q == c.end || *q != delim) {
        err->pos = q;
        err->field = -1;
        err->message = fmt::format("expected {} fields, found {}", nf, j + 1);
        *resume = q;
        return nullptr;
      }
      p = q + 1;
    } else {
      p = q;
    }
  }
  const char* next = EndRecord(c, p, nf, err);
  if (next == nullptr) *resume = p;
  return next;
}

// Parses a window into dense rows.
// Rows a window can hold at most: one per newline, plus an unterminated last record.
std::int64_t RowBound(std::string_view text) {
  return static_cast<std::int64_t>(CountNewlines(text.data(), text.data() + text.size())) +
         (!text.empty() && text.back() != '\n' ? 1 : 0);
}

// Parses a window into dense rows: into the caller's output at out->offset when out->direct (the
// reader stage reserved out->bound rows there), else into the chunk's own buffers.
void ParseWindowDense(const CsvWindow& w, const Ctx& c, const DenseTarget& t, bool with_ids,
                      DenseChunk* out, float* direct_features, float* direct_labels,
                      std::uint64_t* direct_ids) {
  const std::int64_t capacity = out->bound;
  const int cols = t.cols;
  float* features;
  float* labels;
  std::uint64_t* row_ids;
  if (out->direct) {
    features = direct_features + out->offset * cols;
    labels = direct_labels != nullptr ? direct_labels + out->offset : nullptr;
    row_ids = with_ids ? direct_ids + out->offset : nullptr;
  } else {
    if (static_cast<std::int64_t>(out->features.size()) < capacity * cols) {
      out->features.resize(static_cast<std::size_t>(capacity * cols));
    }
    if (static_cast<std::int64_t>(out->labels.size()) < capacity) {
      out->labels.resize(static_cast<std::size_t>(capacity));
    }
    if (with_ids && static_cast<std::int64_t>(out->row_ids.size()) < capacity) {
      out->row_ids.resize(static_cast<std::size_t>(capacity));
    }
    features = out->features.data();
    labels = out->labels.data();
    row_ids = with_ids ? out->row_ids.data() : nullptr;
  }
  // A label slot for layouts without a label column (never read).
  float no_label = 0;
  if (labels == nullptr) labels = &no_label;
  const bool label_slots = t.has_label;
  out->skipped = 0;
  out->errors.clear();
  out->failed = false;
  const std::uint64_t id_base = MakeRowId(w.file_index, w.file_offset);
  std::int64_t n = 0;
  RecordError err;
  bool stop = false;

  // The general path for one record at p; returns the next position.
  auto general = [&](const char* p) -> const char* {
    const char* resume = p;
    const char* next = ParseRecordDense(c, t, p, features + n * cols,
                                        label_slots ? labels + n : labels, &err, &resume);
    if (next != nullptr) {
      if (row_ids != nullptr) row_ids[n] = id_base + static_cast<std::uint64_t>(p - c.data);
      ++n;
      return next;
    }
    if (!OnRecordError(c, err, &out->skipped, &out->errors, &out->failed)) {
      stop = true;
      return c.end;
    }
    return SkipRecord(c, resume, err.pos != nullptr ? err.pos : resume);
  };

  // Tight loop for the common layout (features in file order, the label, if any, last; plain
  // numbers, LF line ends); any record it cannot take goes through the general path.
  const bool simple = t.simple_layout && !c.missing.numeric_tokens;
  const char delim = c.delim;
  const char* p = c.data;
  while (!stop) {
    if (simple && p < c.end && *p != '\n' && *p != '\r' && *p != c.comment) {
      float* row = features + n * cols;
      const char* q = p;
      bool ok = true;
      // Every field but the last ends at a delimiter, the last at the newline.
      const int last = c.num_fields - 1;
      const int inner = std::min(cols, last);
      for (int j = 0; j < inner; ++j) {
        const char* r = ParseFloatSimple(q, c.end, &row[j]);
        if (r == nullptr || *r != delim) [[unlikely]] {
          ok = false;
          break;
        }
        q = r + 1;
      }
      if (ok && inner < cols) {  // no label: the last feature ends the record
        const char* r = ParseFloatSimple(q, c.end, &row[inner]);
        ok = r != nullptr && *r == '\n';
        q = ok ? r + 1 : q;
      }
      if (ok && label_slots) {
        const char* r = ParseFloatSimple(q, c.end, &labels[n]);
        ok = r != nullptr && *r == '\n';
        q = ok ? r + 1 : q;
      }
      if (ok) {
        ESCALA_ASSERT(n < capacity);
        if (row_ids != nullptr) row_ids[n] = id_base + static_cast<std::uint64_t>(p - c.data);
        ++n;
        p = q;
        continue;
      }
    }
    p = SkipNonRecords(c, p, c.end);
    if (p >= c.end) break;
    ESCALA_ASSERT(n < capacity);
    p = general(p);
  }
  out->rows = n;
}

// The table path's fast path, as the dense one's: a float column's field that is a plain number
// ending at the delimiter (at the line end for the last field) is parsed in place, without
// scanning the field first. Returns where the next field starts (the line end after the last),
// or nullptr for anything else (quoted, padded, '+'-signed, missing, malformed), which the
// general path takes. The values are the general path's: both round correctly.
const char* ParsePlainNumber(const Ctx& c, DataType type, const char* p, bool last, float* f32,
                             double* f64) {
  if (c.missing.numeric_tokens) return nullptr;  // "-999" may mean missing: the general path
  const char* q = nullptr;
  if (type == DataType::kFloat32) {
    q = ParseFloatPrefix(p, c.end, f32);
  } else if (type == DataType::kFloat64) {
    const auto r = fast_float::from_chars(p, c.end, *f64);
    q = r.ec == std::errc() ? r.ptr : nullptr;
  }
  if (q == nullptr) return nullptr;
  if (!last) return q < c.end && *q == c.delim ? q + 1 : nullptr;
  return q == c.end || *q == '\n' || *q == '\r' ? q : nullptr;
}

std::int64_t WindowBound(const CsvWindow& w) {
  return w.row_bound >= 0 ? w.row_bound : RowBound(w.data);
}

// Raw pointers per column of a window's destination.
struct ColumnOut {
  DataType type;
  float* f32 = nullptr;
  double* f64 = nullptr;
  std::int64_t* i64 = nullptr;
  std::int32_t* codes = nullptr;
  std::uint8_t* missing = nullptr;
  TableChunk::Dict* dict = nullptr;
};

// Where a window's values go: out's columns (sized for the window), or, for a direct window
// (out->offset >= 0), `direct`'s columns from row out->offset on. Missing masks and dictionaries
// are out's, cleared for the window.
std::vector<ColumnOut> WindowOutputs(const Schema& schema, std::int64_t capacity, TableChunk* out,
                                     TableBuilder* direct) {
  const auto nf = static_cast<std::size_t>(schema.num_fields());
  if (out->columns.size() != nf) {
    out->columns.clear();
    for (const auto& field : schema.fields()) out->columns.emplace_back(field.name, field.type, 0);
    out->missing.assign(nf, {});
    out->dicts.assign(nf, {});
  }
  out->any_missing.assign(nf, 0);
  std::vector<ColumnOut> cols(nf);
  const bool into_builder = out->offset >= 0;
  const auto at = static_cast<std::size_t>(into_builder ? out->offset : 0);
  for (std::size_t k = 0; k < nf; ++k) {
    Column& col = into_builder ? direct->column(k) : out->columns[k];
    if (!into_builder && col.size() < capacity) col.Grow(capacity);
    if (static_cast<std::int64_t>(out->missing[k].size()) < capacity) {
      out->missing[k].resize(static_cast<std::size_t>(capacity));
    }
    ColumnOut& o = cols[k];
    o.type = col.type();
    switch (o.type) {
      case DataType::kFloat32:
        o.f32 = col.mutable_f32().data() + at;
        break;
      case DataType::kFloat64:
        o.f64 = col.mutable_f64().data() + at;
        break;
      case DataType::kInt64:
        o.i64 = col.mutable_i64().data() + at;
        break;
      case DataType::kCategorical:
        o.codes = col.mutable_codes().data() + at;
        out->dicts[k].Clear();
        o.dict = &out->dicts[k];
        break;
    }
    o.missing = out->missing[k].data();
  }
  return cols;
}

// Parses a window into out's columns, or, for a direct window (out->offset >= 0), into `direct`'s
// columns from row out->offset on; missing masks, dictionaries and row ids stay in `out`.
void ParseWindowTable(const CsvWindow& w, const Ctx& c, const Schema& schema, bool with_ids,
                      TableChunk* out, TableBuilder* direct) {
  const std::int64_t capacity = out->bound;  // WindowBound(w), found when the window was cut
  const int nf = c.num_fields;
  const std::vector<ColumnOut> cols = WindowOutputs(schema, capacity, out, direct);
  if (with_ids && static_cast<std::int64_t>(out->row_ids.size()) < capacity) {
    out->row_ids.resize(static_cast<std::size_t>(capacity));
  }
  out->skipped = 0;
  out->errors.clear();
  out->failed = false;
  const std::uint64_t id_base = MakeRowId(w.file_index, w.file_offset);
  const char* p = c.data;
  std::int64_t n = 0;
  RecordError err;
  FieldRef f;
  std::string scratch;
  for (;;) {
    p = SkipNonRecords(c, p, c.end);
    if (p >= c.end) break;
    ESCALA_ASSERT(n < capacity);
    const char* rec = p;
    bool ok = true;
    for (int j = 0; j < nf; ++j) {
      const ColumnOut& col = cols[static_cast<std::size_t>(j)];
      float* f32 = col.type == DataType::kFloat32 ? col.f32 + n : nullptr;
      double* f64 = col.type == DataType::kFloat64 ? col.f64 + n : nullptr;
      const char* after = ParsePlainNumber(c, col.type, p, j + 1 == nf, f32, f64);
      if (after != nullptr) [[likely]] {
        const bool nan = f32 != nullptr ? std::isnan(*f32) : std::isnan(*f64);
        col.missing[n] = nan ? 1 : 0;
        if (nan) [[unlikely]] {
          out->any_missing[static_cast<std::size_t>(j)] = 1;
        }
        p = after;
        continue;
      }
      const char* q = ScanField(c, p, &f, &err);
      if (q == nullptr) {
        err.field = j;
        ok = false;
        break;
      }
      bool missing = false;
      bool parsed = true;
      switch (col.type) {
        case DataType::kFloat32:
          parsed = ParseNumericField(c, f, &col.f32[n], &missing);
          break;
        case DataType::kFloat64:
          parsed = ParseNumericField(c, f, &col.f64[n], &missing);
          break;
        case DataType::kInt64:
          if (!c.missing.numeric_tokens && !f.escaped && ParseInt64(f.b, f.e, &col.i64[n])) {
            break;
          }
          if (c.missing.Contains(f.view())) {
            col.i64[n] = 0;
            missing = true;
          } else if (f.escaped || !ParseInt64(f.b, f.e, &col.i64[n])) {
            parsed = false;
          }
          break;
        case DataType::kCategorical:
          if (c.missing.Contains(f.view())) {
            col.codes[n] = -1;
            missing = true;
          } else if (f.escaped) {
            scratch = UnescapeQuoted(f, c.quote);
            col.codes[n] = col.dict->Code(scratch);
          } else {
            col.codes[n] = col.dict->Code(f.view());
          }
          parsed = col.codes[n] != TableChunk::Dict::kNotText;
          break;
      }
      if (!parsed) {
        err.pos = p;
        err.field = j;
        err.message =
            col.type == DataType::kCategorical
                ? fmt::format("{} is not UTF-8 text (convert the file to UTF-8)", Quote(f.view()))
                : fmt::format("cannot parse {} as {}", Quote(f.view()), DataTypeName(col.type));
        p = q;
        ok = false;
        break;
      }
      col.missing[n] = missing ? 1 : 0;
      if (missing) [[unlikely]] {
        out->any_missing[static_cast<std::size_t>(j)] = 1;
      }
      if (j + 1 < nf) {
        if (q == c.end || *q != c.delim) {
          err.pos = q;
          err.field = -1;
          err.message = fmt::format("expected {} fields, found {}", nf, j + 1);
          p = q;
          ok = false;
          break;
        }
        p = q + 1;
      } else {
        p = q;
      }
    }
    if (ok) {
      const char* next = EndRecord(c, p, nf, &err);
      if (next != nullptr) {
        if (with_ids)
          out->row_ids[static_cast<std::size_t>(n)] =
              id_base + static_cast<std::uint64_t>(rec - c.data);
        ++n;
        p = next;
        continue;
      }
    }
    if (!OnRecordError(c, err, &out->skipped, &out->errors, &out->failed)) break;
    p = SkipRecord(c, p, err.pos != nullptr ? err.pos : p);
  }
  out->rows = n;
}

}  // namespace

std::int32_t TableChunk::Dict::Code(std::string_view s) {
  auto it = index.find(s);
  if (it != index.end()) return it->second;
  // Category names travel in bundles and responses as text: each is checked once, when first seen.
  if (!IsUtf8(s)) return kNotText;
  const auto code = static_cast<std::int32_t>(order.size());
  auto [pos, inserted] = index.emplace(std::string(s), code);
  order.push_back(&pos->first);
  return code;
}

// ---------------------------------------------------------------------------------------------
// TableBuilder

TableBuilder::TableBuilder(const Schema& schema, bool with_row_ids)
    : schema_(schema), with_row_ids_(with_row_ids) {
  for (const auto& field : schema.fields()) columns_.emplace_back(field.name, field.type, 0);
  missing_.resize(columns_.size());
  has_missing_.assign(columns_.size(), 0);
  dicts_.resize(columns_.size());
  dictionaries_.resize(columns_.size());
}

void TableBuilder::Reserve(std::int64_t rows) {
  if (rows <= reserved_) return;
  reserved_ = rows;
  // Column storage is std::vector: growing through Resize keeps amortised appends cheap. Missing
  // masks are reserved when a column first has a missing value.
  if (with_row_ids_) row_ids_.reserve(static_cast<std::size_t>(rows));
}

std::int32_t TableBuilder::GlobalCode(int c, std::string_view s) {
  auto& dict = dicts_[static_cast<std::size_t>(c)];
  auto it = dict.find(s);
  if (it != dict.end()) return it->second;
  auto& names = dictionaries_[static_cast<std::size_t>(c)];
  ESCALA_CHECK(names.size() < static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
               kResourceExhausted, "column '{}' has more than 2^31 categories",
               schema_.field(c).name);
  const auto code = static_cast<std::int32_t>(names.size());
  names.emplace_back(s);
  dict.emplace(names.back(), code);
  return code;
}

namespace {
std::size_t Width(DataType type) {
  return type == DataType::kFloat64 || type == DataType::kInt64 ? 8 : 4;
}
}  // namespace

void TableBuilder::GrowColumns(std::int64_t rows) {
  // One block for every column's storage, when that is a huge page or more.
  std::size_t bytes = 0;
  for (const auto& col : columns_) {
    if (col.size() < rows)
      bytes += (static_cast<std::size_t>(rows) * Width(col.type()) + 63) / 64 * 64;
  }
  const auto block =
      bytes >= kHugePageBytes ? std::make_shared<internal::ColumnBlock>(bytes) : nullptr;
  for (auto& col : columns_) {
    if (col.size() < rows) col.Grow(rows, block);
  }
}

// The window's row ids, and its rows counted.
void TableBuilder::AppendRowIds(const TableChunk& chunk) {
  if (with_row_ids_) {
    row_ids_.insert(row_ids_.end(), chunk.row_ids.begin(),
                    chunk.row_ids.begin() + static_cast<std::ptrdiff_t>(chunk.rows));
  }
  rows_ += chunk.rows;
}

// A direct window's rows, already in the columns from chunk.offset: moved down to rows_ when
// earlier windows left a gap, and their window-local category codes made the table's.
void TableBuilder::AppendDirect(const TableChunk& chunk) {
  const std::int64_t n = chunk.rows;
  const auto at = static_cast<std::size_t>(rows_);
  const auto from = static_cast<std::size_t>(chunk.offset);
  const auto cnt = static_cast<std::size_t>(n);
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    Column& dst = columns_[c];
    const auto move = [&](auto values) {
      if (from != at)
        std::memmove(values.data() + at, values.data() + from, cnt * sizeof(values[0]));
    };
    switch (dst.type()) {
      case DataType::kFloat32:
        move(dst.mutable_f32());
        break;
      case DataType::kFloat64:
        move(dst.mutable_f64());
        break;
      case DataType::kInt64:
        move(dst.mutable_i64());
        break;
      case DataType::kCategorical: {
        move(dst.mutable_codes());
        RemapCodes(c, chunk, dst.mutable_codes().data() + at, dst.mutable_codes().data() + at);
        break;
      }
    }
    AppendMissing(c, chunk, rows_);
  }
  AppendRowIds(chunk);
}

// Window-local category codes `in` as the table's, into `out` (may be `in`); -1 stays missing.
void TableBuilder::RemapCodes(std::size_t c, const TableChunk& chunk, const std::int32_t* in,
                              std::int32_t* out) {
  const auto& dict = chunk.dicts[c];
  remap_.resize(dict.order.size());
  for (std::size_t k = 0; k < dict.order.size(); ++k) {
    remap_[k] = GlobalCode(static_cast<int>(c), *dict.order[k]);
  }
  for (std::int64_t i = 0; i < chunk.rows; ++i) {
    out[i] = in[i] < 0 ? -1 : remap_[static_cast<std::size_t>(in[i])];
  }
}

void TableBuilder::Append(const TableChunk& chunk) {
  const std::int64_t n = chunk.rows;
  if (n == 0) return;
  if (chunk.offset >= 0) return AppendDirect(chunk);
  const std::int64_t at = rows_;
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    Column& dst = columns_[c];
    const Column& src = chunk.columns[c];
    if (dst.size() < at + n) {
      std::int64_t cap = std::max<std::int64_t>(at + n, reserved_);
      if (cap < at + n) cap = at + n;
      dst.Grow(std::max(cap, dst.size() + dst.size() / 2));
    }
    const auto a = static_cast<std::size_t>(at);
    const auto cnt = static_cast<std::size_t>(n);
    switch (dst.type()) {
      case DataType::kFloat32:
        std::memcpy(dst.mutable_f32().data() + a, src.f32().data(), cnt * sizeof(float));
        break;
      case DataType::kFloat64:
        std::memcpy(dst.mutable_f64().data() + a, src.f64().data(), cnt * sizeof(double));
        break;
      case DataType::kInt64:
        std::memcpy(dst.mutable_i64().data() + a, src.i64().data(), cnt * sizeof(std::int64_t));
        break;
      case DataType::kCategorical:
        RemapCodes(c, chunk, src.codes().data(), dst.mutable_codes().data() + a);
        break;
    }
    AppendMissing(c, chunk, at);
  }
  AppendRowIds(chunk);
}

void TableBuilder::AppendMissing(std::size_t c, const TableChunk& chunk, std::int64_t at) {
  if (!has_missing_[c] && !chunk.any_missing[c]) return;  // still none
  std::vector<std::uint8_t>& mask = missing_[c];
  if (!has_missing_[c]) {
    mask.reserve(static_cast<std::size_t>(std::max(reserved_, at + chunk.rows)));
    mask.assign(static_cast<std::size_t>(at), 0);  // the rows before: all present
    has_missing_[c] = 1;
  }
  mask.insert(mask.end(), chunk.missing[c].begin(),
              chunk.missing[c].begin() + static_cast<std::ptrdiff_t>(chunk.rows));
}

Table TableBuilder::Take() {
  std::vector<Column> out;
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    Column col = std::move(columns_[c]);
    col.Resize(rows_);
    col.SetMissingMask(has_missing_[c] ? std::move(missing_[c]) : std::vector<std::uint8_t>());
    if (col.type() == DataType::kCategorical) col.mutable_dictionary() = dictionaries_[c];
    out.push_back(std::move(col));
    columns_[c] =
        Column(schema_.field(static_cast<int>(c)).name, schema_.field(static_cast<int>(c)).type, 0);
    missing_[c] = {};
    has_missing_[c] = 0;
  }
  Table table(std::move(out));
  if (with_row_ids_) {
    table.set_row_ids(std::move(row_ids_));
    row_ids_ = {};
  }
  rows_ = 0;
  reserved_ = 0;
  return table;
}

// ---------------------------------------------------------------------------------------------
// CsvPipeline

struct CsvPipeline::Token {
  CsvWindow window;
  DenseChunk dense;
  TableChunk table;
};

CsvPipeline::CsvPipeline(CsvWindowSource* source, const CsvOptions& options, int num_fields)
    : source_(source), options_(options), num_fields_(num_fields) {
  const int threads = NumThreads();
  // Several windows per thread: a worker descheduled mid-window (a busy machine) does not stall
  // the ordered stages while the others keep parsing.
  const int tokens = threads <= 1 ? 1 : 4 * threads;
  for (int i = 0; i < tokens; ++i) tokens_.push_back(std::make_unique<Token>());
}

CsvPipeline::~CsvPipeline() = default;

std::string FormatWindowError(CsvWindowSource* source, const CsvWindow& w, std::size_t offset,
                              std::string_view prefix, std::string_view message) {
  const std::int64_t first_line = source->ResolveLine(w);
  const LineColumn lc = Locate(w.data, offset, first_line);
  return fmt::format("{}:{}:{}: {}{}; line {} is \"{}\"", source->input(w.input).name, lc.line,
                     lc.column, prefix, message, lc.line, LineExcerpt(w.data, offset));
}

std::string CsvPipeline::Format(const CsvWindow& w, const WindowError& e,
                                const std::vector<std::string>& names) {
  std::string field;
  if (e.field >= 0) {
    if (e.field < static_cast<int>(names.size()) &&
        !names[static_cast<std::size_t>(e.field)].empty()) {
      field = fmt::format("field {} {}: ", e.field + 1,
                          Quote(names[static_cast<std::size_t>(e.field)]));
    } else {
      field = fmt::format("field {}: ", e.field + 1);
    }
  }
  return FormatWindowError(source_, w, e.offset, field, e.message);
}

void CsvPipeline::Account(const CsvWindow& w, std::int64_t rows, std::int64_t skipped, bool failed,
                          const std::vector<WindowError>& errors,
                          const std::vector<std::string>& names, ReadReport* report) {
  if (failed) Throw(ErrorCode::kInvalidArgument, "{}", Format(w, errors.back(), names));
  report->rows += rows;
  report->bytes += static_cast<std::int64_t>(w.data.size());
  report->skipped_rows += skipped;
  for (const auto& e : errors) {
    if (report->skipped_examples.size() >= ReadReport::kMaxExamples) break;
    report->skipped_examples.push_back(Format(w, e, names));
  }
}

bool CsvPipeline::ReadDense(const DenseTarget& target, bool row_ids, std::uint64_t expected_bytes,
                            std::uint64_t max_bytes, DenseData* out, ReadReport* report) {
  const MissingSet missing(options_.missing_values);
  const auto cols = static_cast<std::int64_t>(target.cols);
  std::int64_t rows = out->features.rows();
  if (out->features.cols() != cols) {
    ESCALA_ASSERT(rows == 0);
    out->features.Resize(0, cols);
  }
  ESCALA_ASSERT(!target.has_label || static_cast<std::int64_t>(out->labels.size()) == rows);
  ESCALA_ASSERT(!row_ids || static_cast<std::int64_t>(out->row_ids.size()) == rows);
  // Output rows [0, capacity) exist; workers write windows straight into their reserved rows.
  // The matrix's logical shape is capacity x cols while parsing and rows x cols at the end
  // (Resize within the allocation keeps the buffer).
  std::int64_t capacity = rows;
  auto reserve = [&](std::int64_t need) {
    const std::int64_t have = cols == 0
                                  ? std::numeric_limits<std::int64_t>::max()
                                  : static_cast<std::int64_t>(out->features.capacity()) / cols;
    if (need > have) {
      MatrixF bigger(need, cols);
      AdviseHugePages(bigger.data(), bigger.bytes());
      if (rows > 0) {
        std::memcpy(bigger.data(), out->features.data(),
                    static_cast<std::size_t>(rows * cols) * sizeof(float));
      }
      out->features.swap(bigger);
    }
    out->features.Resize(std::max(need, capacity), cols);
    capacity = std::max(need, capacity);
    if (target.has_label) out->labels.resize(static_cast<std::size_t>(capacity));
    if (row_ids) out->row_ids.resize(static_cast<std::size_t>(capacity));
  };
  std::uint64_t consumed = 0;
  bool any = false;
  bool sized = false;
  bool direct = true;            // placing windows straight into the output
  std::int64_t next_row = rows;  // first row reserved for the next direct window
  std::vector<void*> tokens;
  for (auto& t : tokens_) tokens.push_back(t.get());
  RunOrderedStages(
      tokens,
      [&](void* p) {
        if (consumed >= max_bytes) return false;
        auto* t = static_cast<Token*>(p);
        if (!source_->Next(&t->window)) return false;
        const std::string_view text = t->window.data;
        consumed += text.size();
        any = true;
        DenseChunk& d = t->dense;
        d.bound = t->window.row_bound >= 0 ? t->window.row_bound : RowBound(text);
        if (!sized) {
          // Size the output once from the first window's rows per byte (+5%), before any
          // worker writes to it: nothing moves while windows are in flight.
          const double per_byte =
              text.empty() ? 0.0 : static_cast<double>(d.bound) / static_cast<double>(text.size());
          const auto expected =
              static_cast<double>(std::max<std::uint64_t>(expected_bytes, text.size()));
          reserve(rows + static_cast<std::int64_t>(per_byte * expected * 1.05) + 1024);
          sized = true;
        }
        // Once a window does not fit, every later one goes through its own buffer: the output
        // may then grow (in the ordered stage) while no worker writes to it.
        d.direct = direct && next_row + d.bound <= capacity;
        direct = d.direct;
        if (d.direct) {
          d.offset = next_row;
          next_row += d.bound;
        }
        return true;
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        const Ctx c(t->window.data, options_, num_fields_, missing);
        // Only direct windows touch the output: buffered ones may run while it is regrown.
        const bool d = t->dense.direct;
        ParseWindowDense(t->window, c, target, row_ids, &t->dense,
                         d ? out->features.data() : nullptr,
                         d && target.has_label ? out->labels.data() : nullptr,
                         d && row_ids ? out->row_ids.data() : nullptr);
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        const DenseChunk& d = t->dense;
        Account(t->window, d.rows, d.skipped, d.failed, d.errors, target.field_names, report);
        const std::int64_t n = d.rows;
        if (n == 0) return;
        if (d.direct) {
          // Close the gap left by blank lines, comments or skipped rows in earlier windows.
          if (d.offset != rows) {
            std::memmove(out->features.row(rows), out->features.row(d.offset),
                         static_cast<std::size_t>(n * cols) * sizeof(float));
            if (target.has_label) {
              std::memmove(out->labels.data() + rows, out->labels.data() + d.offset,
                           static_cast<std::size_t>(n) * sizeof(float));
            }
            if (row_ids) {
              std::memmove(out->row_ids.data() + rows, out->row_ids.data() + d.offset,
                           static_cast<std::size_t>(n) * sizeof(std::uint64_t));
            }
          }
        } else {
          if (rows + n > capacity) reserve(std::max(rows + n, capacity + capacity / 2));
          std::memcpy(out->features.row(rows), d.features.data(),
                      static_cast<std::size_t>(n * cols) * sizeof(float));
          if (target.has_label) {
            std::memcpy(out->labels.data() + rows, d.labels.data(),
                        static_cast<std::size_t>(n) * sizeof(float));
          }
          if (row_ids) {
            std::memcpy(out->row_ids.data() + rows, d.row_ids.data(),
                        static_cast<std::size_t>(n) * sizeof(std::uint64_t));
          }
        }
        rows += n;
      });
  out->features.Resize(rows, cols);
  if (target.has_label) out->labels.resize(static_cast<std::size_t>(rows));
  if (row_ids) out->row_ids.resize(static_cast<std::size_t>(rows));
  out->feature_names = target.feature_names;
  out->label_name = target.label_name;
  return any;
}

bool CsvPipeline::ReadTable(TableBuilder* builder, std::uint64_t expected_bytes,
                            std::uint64_t max_bytes, ReadReport* report) {
  const MissingSet missing(options_.missing_values);
  std::vector<std::string> names;
  for (const auto& f : builder->schema().fields()) names.push_back(f.name);
  std::uint64_t consumed = 0;
  bool any = false;
  bool sized = expected_bytes == 0;
  std::vector<void*> tokens;
  for (auto& t : tokens_) tokens.push_back(t.get());
  const bool row_ids = builder->with_row_ids();
  // Windows go straight into the builder's columns while they fit the capacity sized from the
  // first one (as ReadDense's); once one does not, it and every later one are parsed into their
  // own buffers and copied, so the columns may grow while no worker writes into them.
  bool direct = expected_bytes > 0;
  std::int64_t next_row = builder->rows();
  RunOrderedStages(
      tokens,
      [&](void* p) {
        if (consumed >= max_bytes) return false;
        auto* t = static_cast<Token*>(p);
        if (!source_->Next(&t->window)) return false;
        consumed += t->window.data.size();
        any = true;
        TableChunk& d = t->table;
        d.bound = WindowBound(t->window);
        if (direct && builder->column_capacity() == builder->rows() &&
            next_row == builder->rows()) {
          const double per_byte =
              t->window.data.empty()
                  ? 0.0
                  : static_cast<double>(d.bound) / static_cast<double>(t->window.data.size());
          builder->GrowColumns(
              builder->rows() +
              static_cast<std::int64_t>(per_byte *
                                        static_cast<double>(std::max<std::uint64_t>(
                                            expected_bytes, t->window.data.size())) *
                                        1.05) +
              1024);
        }
        direct = direct && next_row + d.bound <= builder->column_capacity();
        d.offset = direct ? next_row : -1;
        if (direct) next_row += d.bound;
        return true;
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        const Ctx c(t->window.data, options_, num_fields_, missing);
        ParseWindowTable(t->window, c, builder->schema(), row_ids, &t->table, builder);
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        const TableChunk& d = t->table;
        Account(t->window, d.rows, d.skipped, d.failed, d.errors, names, report);
        if (!sized && d.rows > 0 && !t->window.data.empty()) {
          const double per_byte =
              static_cast<double>(d.rows) / static_cast<double>(t->window.data.size());
          builder->Reserve(
              builder->rows() +
              static_cast<std::int64_t>(per_byte * static_cast<double>(expected_bytes) * 1.05) +
              1024);
          sized = true;
        }
        builder->Append(d);
      });
  return any;
}

// ---------------------------------------------------------------------------------------------
// Header, inference, record ends

namespace {

// Tokenises the record at p into strings. Returns the next record start, or throws.
const char* ReadRecordFields(const Ctx& c, const char* p, std::string_view name,
                             std::vector<std::string>* fields) {
  fields->clear();
  RecordError err;
  FieldRef f;
  for (;;) {
    const char* q = ScanField(c, p, &f, &err);
    if (q == nullptr) {
      const std::string_view text(c.data, static_cast<std::size_t>(c.end - c.data));
      const auto pos = static_cast<std::size_t>(err.pos - c.data);
      const LineColumn lc = Locate(text, pos);
      Throw(ErrorCode::kInvalidArgument, "{}:{}:{}: field {}: {}; line {} is \"{}\"", name, lc.line,
            lc.column, fields->size() + 1, err.message, lc.line, LineExcerpt(text, pos));
    }
    fields->push_back(f.escaped ? UnescapeQuoted(f, c.quote) : std::string(f.view()));
    if (q < c.end && *q == c.delim) {
      p = q + 1;
      continue;
    }
    if (q == c.end) return q;
    if (*q == '\r') ++q;
    return q < c.end ? q + 1 : q;
  }
}

}  // namespace

CsvHeader ReadCsvHeader(std::string_view text, const CsvOptions& options, std::string_view name) {
  const MissingSet missing(options.missing_values);
  Ctx c(text, options, 0, missing);
  const char* p = c.data;
  if (text.size() >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;  // UTF-8 BOM
  for (int i = 0; i < options.skip_lines && p < c.end; ++i) {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(c.end - p));
    p = nl == nullptr ? c.end : static_cast<const char*>(nl) + 1;
  }
  p = SkipNonRecords(c, p, c.end);
  if (p == c.end) {
    Throw(
        ErrorCode::kInvalidArgument, "{}: empty file (no {} found{})", name,
        options.header ? "header line" : "record",
        options.skip_lines > 0 ? fmt::format(" after skipping {} lines", options.skip_lines) : "");
  }
  CsvHeader h;
  std::vector<std::string> fields;
  const char* next = ReadRecordFields(c, p, name, &fields);
  if (options.header) {
    std::unordered_map<std::string, std::size_t> seen;  // name -> column (linear in the width)
    seen.reserve(fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) {
      std::string n = fields[i];
      if (n.empty()) n = fmt::format("c{}", i);
      const auto [it, added] = seen.emplace(n, i);
      if (!added) {
        const LineColumn lc = Locate(text, static_cast<std::size_t>(p - c.data));
        Throw(ErrorCode::kInvalidArgument,
              "{}:{}:1: duplicate column name '{}' in the header (columns {} and {})", name,
              lc.line, n, it->second + 1, i + 1);
      }
      h.names.push_back(std::move(n));
    }
    h.data_start = static_cast<std::size_t>(next - c.data);
  } else {
    for (std::size_t i = 0; i < fields.size(); ++i) h.names.push_back(fmt::format("c{}", i));
    h.data_start = static_cast<std::size_t>(p - c.data);
  }
  h.data_line = 1 + static_cast<std::int64_t>(CountNewlines(c.data, c.data + h.data_start));
  return h;
}

namespace {

// "file:line:column: 'value'" for the field that made a column categorical.
std::string Evidence(const Ctx& c, const CsvHeader& header, std::string_view name,
                     const char* record, const FieldRef& f) {
  const auto line = header.data_line + static_cast<std::int64_t>(CountNewlines(c.data, record));
  std::string value(f.view().substr(0, 40));
  return fmt::format("{}:{}:{}: '{}'{}", name, line, f.b - record + 1, value,
                     f.view().size() > 40 ? "..." : "");
}

}  // namespace

Schema InferCsvTypes(std::string_view records, bool complete, const CsvHeader& header,
                     const CsvOptions& options, std::string_view name) {
  if (!complete) records = records.substr(0, LastRecordEnd(records, options));
  const int nf = static_cast<int>(header.names.size());
  const MissingSet missing(options.missing_values);
  Ctx c(records, options, nf, missing);
  std::vector<bool> numeric(static_cast<std::size_t>(nf), true);
  std::vector<std::string> evidence(static_cast<std::size_t>(nf));
  std::vector<FieldRef> fields;
  const char* p = c.data;
  const char* record = p;
  RecordError err;
  for (std::int64_t rows = 0; rows < options.infer_rows;) {
    p = SkipNonRecords(c, p, c.end);
    if (p >= c.end) break;
    record = p;
    fields.clear();
    bool ok = true;
    const char* q = p;
    for (;;) {
      FieldRef f;
      q = ScanField(c, q, &f, &err);
      if (q == nullptr) {
        ok = false;
        break;
      }
      fields.push_back(f);
      if (q < c.end && *q == c.delim) {
        ++q;
        continue;
      }
      break;
    }
    if (!ok) {
      // A malformed record: leave it to the real parse to report; resume at the next line.
      const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(c.end - p));
      p = nl == nullptr ? c.end : static_cast<const char*>(nl) + 1;
      continue;
    }
    if (q < c.end && *q == '\r') ++q;
    p = q < c.end ? q + 1 : q;
    if (static_cast<int>(fields.size()) != nf) continue;
    ++rows;
    for (int j = 0; j < nf; ++j) {
      if (!numeric[static_cast<std::size_t>(j)]) continue;
      const FieldRef& f = fields[static_cast<std::size_t>(j)];
      float quick;
      if (!f.escaped && ParseFloatSimple(f.b, c.end, &quick) == f.e && f.e > f.b) continue;
      double v;
      if ((f.escaped || !ParseReal(f.b, f.e, &v)) && !c.missing.Contains(f.view())) {
        numeric[static_cast<std::size_t>(j)] = false;
        evidence[static_cast<std::size_t>(j)] = Evidence(c, header, name, record, f);
      }
    }
  }
  std::vector<Field> out;
  for (int j = 0; j < nf; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    out.push_back({header.names[jj], numeric[jj] ? options.float_type : DataType::kCategorical,
                   std::move(evidence[jj])});
  }
  for (const auto& override_field : options.column_types) {
    const int at = Schema(out).Find(override_field.name);
    const bool found = at >= 0;
    if (found) out[static_cast<std::size_t>(at)].type = override_field.type;
    if (!found) {
      Schema s(out);
      Throw(ErrorCode::kNotFound,
            "{}: column_types names '{}', which is not a column (columns: {})", name,
            override_field.name, s.ToString());
    }
  }
  return Schema(std::move(out));
}

CsvFileInfo ProbeCsvText(std::string_view text, const CsvOptions& options, std::string_view name) {
  CsvFileInfo info;
  info.header = ReadCsvHeader(text, options, name);
  info.schema =
      InferCsvTypes(text.substr(info.header.data_start), true, info.header, options, name);
  return info;
}

namespace {

// A prefix of the file that holds its header record (and the sample, when asked for).
bool HeaderComplete(const std::string& prefix, bool whole, const CsvOptions& options) {
  if (whole) return true;
  return LastRecordEnd(prefix, options) != 0 &&
         CountNewlines(prefix.data(), prefix.data() + prefix.size()) >=
             static_cast<std::size_t>(options.skip_lines) + 2;
}

}  // namespace

CsvHeader ReadCsvFileHeader(const std::string& path, const CsvOptions& options) {
  for (std::size_t bytes = 64 << 10;; bytes *= 4) {
    const std::string prefix = ReadPrefix(path, bytes);
    const bool whole = prefix.size() < bytes;
    if (!HeaderComplete(prefix, whole, options)) continue;
    const std::string_view text = prefix;
    return ReadCsvHeader(whole ? text : text.substr(0, LastRecordEnd(text, options)), options,
                         path);
  }
}

CsvFileInfo ProbeCsvFile(const std::string& path, const CsvOptions& options,
                         std::size_t sample_bytes) {
  for (std::size_t bytes = sample_bytes;; bytes *= 4) {
    const std::string prefix = ReadPrefix(path, bytes);
    const bool whole = prefix.size() < bytes;
    // The header must be complete in the sample: grow the sample until it is.
    if (!HeaderComplete(prefix, whole, options)) continue;
    const std::size_t first_end = LastRecordEnd(prefix, options);
    CsvFileInfo info;
    info.header = ReadCsvHeader(
        whole ? std::string_view(prefix) : std::string_view(prefix).substr(0, first_end), options,
        path);
    info.schema = InferCsvTypes(std::string_view(prefix).substr(info.header.data_start), whole,
                                info.header, options, path);
    return info;
  }
}

DenseTarget MakeDenseTarget(const Schema& schema, const DenseSpec& spec) {
  DenseTarget t;
  for (const auto& f : schema.fields()) t.field_names.push_back(f.name);
  t.feature_names = ResolveFeatures(schema, spec);
  t.cols = static_cast<int>(t.feature_names.size());
  t.field_to_col.assign(static_cast<std::size_t>(schema.num_fields()), DenseTarget::kSkip);
  for (std::size_t k = 0; k < t.feature_names.size(); ++k) {
    t.field_to_col[static_cast<std::size_t>(schema.Index(t.feature_names[k]))] =
        static_cast<int>(k);
  }
  if (!spec.label.empty()) {
    t.has_label = true;
    t.label_name = spec.label;
    t.field_to_col[static_cast<std::size_t>(schema.Index(spec.label))] = DenseTarget::kLabel;
  }
  t.simple_layout = true;
  for (int j = 0; j < schema.num_fields(); ++j) {
    const int col = t.field_to_col[static_cast<std::size_t>(j)];
    const bool label_last = col == DenseTarget::kLabel && j == schema.num_fields() - 1;
    if (col != j && !label_last) t.simple_layout = false;
  }
  return t;
}

}  // namespace escala::data::internal
