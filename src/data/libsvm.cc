#include "escala/data/libsvm.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "data/csv_internal.h"
#include "data/csv_source.h"
#include "data/input.h"
#include "data/libsvm_internal.h"
#include "data/number.h"
#include "data/ordered_stages.h"
#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/data/split.h"

namespace escala::data {
namespace internal {
namespace {

struct SparseChunk {
  std::vector<std::int64_t> row_nnz;  // entries per row
  std::vector<std::int32_t> indices;
  std::vector<float> values;
  std::vector<float> labels;
  std::vector<std::uint64_t> row_ids;
  std::int64_t rows = 0;
  std::int64_t max_index = -1;  // largest column seen
  std::int64_t skipped = 0;
  std::vector<WindowError> errors;
  bool failed = false;
};

inline bool IsSpace(char c) {
  return c == ' ' || c == '\t';
}
inline bool IsEnd(char c) {
  return c == '\n' || c == '\r' || c == '#';
}

// Parses one line at p into the chunk. Returns the next line start; nullptr with *err on error.
const char* ParseLine(const char* p, const char* end, const LibsvmOptions& o, SparseChunk* out,
                      WindowError* err, const char* base) {
  auto fail = [&](const char* at, std::string message) -> const char* {
    err->offset = static_cast<std::size_t>(at - base);
    err->message = std::move(message);
    return nullptr;
  };
  const char* q = p;
  while (q < end && IsSpace(*q)) ++q;
  // Label.
  const char* tok = q;
  float label;
  const char* fast = ParseFloatSimple(q, end, &label);
  if (fast != nullptr && (IsSpace(*fast) || *fast == '\n')) {
    q = fast;
  } else {
    while (q < end && !IsSpace(*q) && *q != '\n' && *q != '\r') ++q;
  }
  if (fast != q && !ParseReal(tok, q, &label)) {
    return fail(tok, fmt::format("cannot parse the label {} as a number",
                                 Quote(std::string_view(tok, static_cast<std::size_t>(q - tok)))));
  }
  const std::size_t first_entry = out->indices.size();
  std::int64_t prev = -1;
  const std::int64_t index_base = o.zero_based ? 0 : 1;
  for (;;) {
    // Fastest path: one space, then "<index>:<plain number>" and a separator (digit runs are
    // converted eight bytes at a time).
    if (end - q >= 48 && *q == ' ') {
      const char* s = q + 1;
      std::uint64_t index;
      const int n = DigitRun(s, &index);
      float value;
      const char* r;
      if (n > 0 && n < 8 && s[n] == ':' && (r = ParseFloatSimple(s + n + 1, end, &value)) &&
          (*r == ' ' || *r == '\n')) {
        const auto col = static_cast<std::int64_t>(index) - index_base;
        if (col > prev && (o.num_features <= 0 || col < o.num_features)) {
          out->indices.push_back(static_cast<std::int32_t>(col));
          out->values.push_back(value);
          prev = col;
          q = r;
          continue;
        }
      }
    }
    while (q < end && IsSpace(*q)) ++q;
    if (q == end || IsEnd(*q)) break;
    tok = q;
    {
      // Fast path: "<digits>:<plain number>" followed by a separator.
      std::uint64_t index = 0;
      const char* d = q;
      while (d < end && d - q < 10 && static_cast<unsigned>(*d - '0') < 10) {
        index = index * 10 + static_cast<unsigned>(*d - '0');
        ++d;
      }
      float value;
      const char* r;
      if (d > q && d < end && *d == ':' && (r = ParseFloatSimple(d + 1, end, &value)) != nullptr &&
          (IsSpace(*r) || *r == '\n' || *r == '\r' || *r == '#')) {
        const auto col = static_cast<std::int64_t>(index) - (o.zero_based ? 0 : 1);
        if (col > prev && (o.num_features <= 0 || col < o.num_features) &&
            col <= std::numeric_limits<std::int32_t>::max()) {
          out->indices.push_back(static_cast<std::int32_t>(col));
          out->values.push_back(value);
          prev = col;
          q = r;
          continue;
        }
      }
    }
    if (end - q >= 4 && std::memcmp(q, "qid:", 4) == 0) {
      q += 4;
      const char* v = q;
      while (q < end && !IsSpace(*q) && !IsEnd(*q)) ++q;
      std::int64_t qid;
      if (!ParseInt64(v, q, &qid)) {
        return fail(tok,
                    fmt::format("malformed qid {}",
                                Quote(std::string_view(tok, static_cast<std::size_t>(q - tok)))));
      }
      continue;
    }
    const char* colon = q;
    while (colon < end && *colon != ':' && !IsSpace(*colon) && !IsEnd(*colon)) ++colon;
    if (colon == end || *colon != ':') {
      return fail(tok,
                  fmt::format("expected index:value, found {}",
                              Quote(std::string_view(tok, static_cast<std::size_t>(colon - tok)))));
    }
    std::int64_t index;
    if (!ParseInt64(tok, colon, &index)) {
      return fail(tok,
                  fmt::format("cannot parse the index {}",
                              Quote(std::string_view(tok, static_cast<std::size_t>(colon - tok)))));
    }
    const std::int64_t col = o.zero_based ? index : index - 1;
    if (index < 0) return fail(tok, fmt::format("negative feature index {}", index));
    if (col < 0) {
      return fail(tok,
                  "feature index 0 in a 1-based file (indices start at 1; set zero_based "
                  "for 0-based files)");
    }
    if (col <= prev) {
      return fail(tok, fmt::format("feature indices must increase within a line: {} after {}",
                                   index, o.zero_based ? prev : prev + 1));
    }
    if (o.num_features > 0 && col >= o.num_features) {
      return fail(tok, fmt::format("feature index {} is beyond the {} features given", index,
                                   o.num_features));
    }
    if (col > std::numeric_limits<std::int32_t>::max()) {
      return fail(tok, fmt::format("feature index {} exceeds 2^31", index));
    }
    q = colon + 1;
    const char* v = q;
    while (q < end && !IsSpace(*q) && !IsEnd(*q)) ++q;
    float value;
    if (!ParseReal(v, q, &value)) {
      return fail(v, fmt::format("cannot parse the value {}",
                                 Quote(std::string_view(v, static_cast<std::size_t>(q - v)))));
    }
    out->indices.push_back(static_cast<std::int32_t>(col));
    out->values.push_back(value);
    prev = col;
  }
  out->max_index = std::max(out->max_index, prev);
  out->labels.push_back(label);
  out->row_nnz.push_back(static_cast<std::int64_t>(out->indices.size() - first_entry));
  // Skip a comment and the line end.
  const void* nl = q < end ? std::memchr(q, '\n', static_cast<std::size_t>(end - q)) : nullptr;
  return nl == nullptr ? end : static_cast<const char*>(nl) + 1;
}

void ParseWindow(const CsvWindow& w, const LibsvmOptions& o, bool with_ids, SparseChunk* out) {
  out->row_nnz.clear();
  out->indices.clear();
  out->values.clear();
  out->labels.clear();
  out->row_ids.clear();
  out->errors.clear();
  out->skipped = 0;
  out->failed = false;
  out->max_index = -1;
  const char* p = w.data.data();
  const char* end = p + w.data.size();
  const std::uint64_t id_base = MakeRowId(w.file_index, w.file_offset);
  WindowError err;
  while (p < end) {
    const char* q = p;
    while (q < end && IsSpace(*q)) ++q;
    if (q == end || IsEnd(*q)) {  // blank or comment-only line
      const void* nl = std::memchr(q, '\n', static_cast<std::size_t>(end - q));
      p = nl == nullptr ? end : static_cast<const char*>(nl) + 1;
      continue;
    }
    const std::size_t entries = out->indices.size();
    const char* next = ParseLine(p, end, o, out, &err, w.data.data());
    if (next != nullptr) {
      if (with_ids) out->row_ids.push_back(id_base + static_cast<std::uint64_t>(p - w.data.data()));
      p = next;
      continue;
    }
    out->indices.resize(entries);
    out->values.resize(entries);
    if (o.on_error == OnError::kFail) {
      out->errors.push_back(err);
      out->failed = true;
      break;
    }
    ++out->skipped;
    if (out->errors.size() < ReadReport::kMaxExamples) out->errors.push_back(err);
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    p = nl == nullptr ? end : static_cast<const char*>(nl) + 1;
  }
  out->rows = static_cast<std::int64_t>(out->labels.size());
}

}  // namespace

CsvOptions LibsvmLineOptions() {
  CsvOptions o;
  o.header = false;
  o.quote = '\0';
  o.comment = '\0';
  o.quoted_newlines = false;
  return o;
}

void ReadLibsvmInputs(std::vector<CsvInput> inputs, const LibsvmOptions& options, bool row_ids,
                      std::uint64_t expected_bytes, SparseData* out, ReadReport* report) {
  const CsvOptions line_options = LibsvmLineOptions();
  CsvWindowSource source(std::move(inputs), line_options, kWindowBytes);
  const int threads = NumThreads();
  const std::size_t ntokens = threads <= 1 ? 1 : static_cast<std::size_t>(4 * threads);
  struct Token {
    CsvWindow window;
    SparseChunk chunk;
  };
  std::vector<Token> tokens(ntokens);
  std::vector<void*> ptrs;
  for (auto& t : tokens) ptrs.push_back(&t);
  CsrMatrix& x = out->x;
  x = CsrMatrix();
  out->labels.clear();
  out->row_ids.clear();
  std::int64_t max_index = -1;
  ReadReport part;
  bool reserved = false;
  RunOrderedStages(
      ptrs, [&](void* p) { return source.Next(&static_cast<Token*>(p)->window); },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        ParseWindow(t->window, options, row_ids, &t->chunk);
      },
      [&](void* p) {
        auto* t = static_cast<Token*>(p);
        const SparseChunk& c = t->chunk;
        if (c.failed) {
          Throw(ErrorCode::kInvalidArgument, "{}",
                FormatWindowError(&source, t->window, c.errors.back().offset, "",
                                  c.errors.back().message));
        }
        part.rows += c.rows;
        part.bytes += static_cast<std::int64_t>(t->window.data.size());
        part.skipped_rows += c.skipped;
        for (const auto& e : c.errors) {
          if (part.skipped_examples.size() >= ReadReport::kMaxExamples) break;
          part.skipped_examples.push_back(
              FormatWindowError(&source, t->window, e.offset, "", e.message));
        }
        if (!reserved && expected_bytes > 0 && !t->window.data.empty()) {
          // Size the output once from the first window (+5%).
          const double scale = 1.05 * static_cast<double>(expected_bytes) /
                               static_cast<double>(t->window.data.size());
          const auto rows = static_cast<std::size_t>(static_cast<double>(c.rows) * scale) + 1024;
          const auto nnz_est =
              static_cast<std::size_t>(static_cast<double>(c.indices.size()) * scale) + 1024;
          x.indptr.reserve(rows + 1);
          out->labels.reserve(rows);
          if (row_ids) out->row_ids.reserve(rows);
          x.indices.reserve(nnz_est);
          x.values.reserve(nnz_est);
          reserved = true;
        }
        std::int64_t nnz = x.indptr.back();
        for (const auto k : c.row_nnz) {
          nnz += k;
          x.indptr.push_back(nnz);
        }
        x.indices.insert(x.indices.end(), c.indices.begin(), c.indices.end());
        x.values.insert(x.values.end(), c.values.begin(), c.values.end());
        out->labels.insert(out->labels.end(), c.labels.begin(), c.labels.end());
        out->row_ids.insert(out->row_ids.end(), c.row_ids.begin(), c.row_ids.end());
        max_index = std::max(max_index, c.max_index);
      });
  x.rows = static_cast<std::int64_t>(out->labels.size());
  x.cols = options.num_features > 0 ? options.num_features : max_index + 1;
  WarnIfSkipped(source.num_inputs() > 0 ? source.input(0).name : "libsvm", part);
  if (report != nullptr) report->Merge(part);
}

}  // namespace internal

namespace {

void CheckNotEmpty(std::string_view text, std::string_view name) {
  for (const char c : text) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
  }
  Throw(ErrorCode::kInvalidArgument, "{}: empty file (no LIBSVM lines)", name);
}

}  // namespace

SparseData ParseLibsvm(std::string_view text, const LibsvmOptions& options, std::string_view name,
                       ReadReport* report) {
  CheckNotEmpty(text.substr(0, std::min<std::size_t>(text.size(), 1 << 16)), name);
  internal::CsvInput in;
  in.memory = text;
  in.name = std::string(name);
  SparseData out;
  ReadReport part;
  part.files = 1;
  internal::ReadLibsvmInputs({in}, options, options.row_ids, text.size(), &out, &part);
  if (report != nullptr) report->Merge(part);
  return out;
}

SparseData ReadLibsvm(const std::string& path, const LibsvmOptions& options, ReadReport* report) {
  CheckNotEmpty(internal::ReadPrefix(path, 1 << 16), path);
  internal::CsvInput in;
  in.path = path;
  in.name = path;
  SparseData out;
  ReadReport part;
  part.files = 1;
  std::error_code ec;
  const std::uint64_t size = internal::IsGzipFile(path) ? 0 : std::filesystem::file_size(path, ec);
  internal::ReadLibsvmInputs({in}, options, options.row_ids, ec ? 0 : size, &out, &part);
  if (report != nullptr) report->Merge(part);
  return out;
}

}  // namespace escala::data
