// Private CSV engine shared by the CSV reader, datasets and streams: header and schema handling,
// and the ordered pipeline that parses record-aligned windows in parallel into dense float32 rows
// or table columns.
#ifndef ESCALA_SRC_DATA_CSV_INTERNAL_H_
#define ESCALA_SRC_DATA_CSV_INTERNAL_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/csv_source.h"
#include "escala/data/csv.h"
#include "escala/data/dense.h"
#include "escala/data/read_report.h"
#include "escala/data/table.h"

namespace escala::data::internal {

// Header handling: the first `skip_lines` physical lines are skipped; with a header the next
// record gives the names. data_start is the offset of the first data record.
struct CsvHeader {
  std::vector<std::string> names;
  std::size_t data_start = 0;
  std::int64_t data_line = 1;  // line number of the first data record
};
// Reads the header at the start of `text` (the start of a file; it must hold the whole header
// record). Without a header, names are c0.. (the field count comes from the first record).
// Throws kInvalidArgument for an empty file.
CsvHeader ReadCsvHeader(std::string_view text, const CsvOptions& options, std::string_view name);

// Infers column types from the first options.infer_rows records of `records`. When `complete`
// is false the text may end inside a record, which is then ignored.
Schema InferCsvTypes(std::string_view records, bool complete, const CsvHeader& header,
                     const CsvOptions& options, std::string_view name);

// Header + schema of a file, reading only its first bytes (sample_bytes, more if the header is
// longer). The schema is inferred on that sample and then options.column_types applied.
struct CsvFileInfo {
  CsvHeader header;
  Schema schema;
};
CsvFileInfo ProbeCsvFile(const std::string& path, const CsvOptions& options,
                         std::size_t sample_bytes = std::size_t{4} << 20);
CsvFileInfo ProbeCsvText(std::string_view text, const CsvOptions& options, std::string_view name);
// Only the header of a file (reads as little as it can).
CsvHeader ReadCsvFileHeader(const std::string& path, const CsvOptions& options);

// Where each CSV field goes in a dense output.
struct DenseTarget {
  static constexpr int kLabel = -1;
  static constexpr int kSkip = -2;
  std::vector<int> field_to_col;  // per field: feature column, kLabel or kSkip
  int cols = 0;
  bool has_label = false;
  std::vector<std::string> feature_names;
  std::string label_name;
  std::vector<std::string> field_names;  // every CSV field, for messages
  // Features are fields 0..cols-1 in order and the label, if any, is the last field.
  bool simple_layout = false;
};
DenseTarget MakeDenseTarget(const Schema& schema, const DenseSpec& spec);

// A malformed record found while parsing a window.
struct WindowError {
  std::size_t offset = 0;  // into the window's data
  int field = -1;          // 0-based, -1 when not about one field
  std::string message;
};

// Rows parsed from one window.
struct DenseChunk {
  // Set by the reader stage: at most `bound` rows; written straight into the output at row
  // `offset` when `direct`, else into the buffers below.
  std::int64_t bound = 0;
  std::int64_t offset = 0;
  bool direct = false;
  std::vector<float> features;
  std::vector<float> labels;
  std::vector<std::uint64_t> row_ids;
  std::int64_t rows = 0;
  std::int64_t skipped = 0;
  std::vector<WindowError> errors;  // the first few skipped records, or the fatal one
  bool failed = false;
};

struct TableChunk {
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // A window-local dictionary of a categorical column (codes in first-seen order).
  struct Dict {
    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> index;
    std::vector<const std::string*> order;
    // The code of `s`, or kNotText when `s` is new and not UTF-8.
    std::int32_t Code(std::string_view s);
    static constexpr std::int32_t kNotText = -2;
    void Clear() {
      index.clear();
      order.clear();
    }
  };
  std::vector<Column> columns;
  std::vector<std::vector<std::uint8_t>> missing;
  std::vector<std::uint8_t> any_missing;  // per column: whether `missing` holds a 1
  std::vector<Dict> dicts;
  std::vector<std::uint64_t> row_ids;
  std::int64_t rows = 0;
  std::int64_t skipped = 0;
  std::vector<WindowError> errors;
  bool failed = false;
  // A direct window's values are parsed straight into the builder's columns, at rows [offset,
  // offset + bound) (TableBuilder::GrowColumns); -1: into `columns` above.
  std::int64_t offset = -1;
  std::int64_t bound = 0;  // rows the window can hold at most (its line ends)
};

// Appends parsed table chunks into columns, merging categorical dictionaries in file order.
class TableBuilder {
 public:
  TableBuilder(const Schema& schema, bool with_row_ids);
  void Reserve(std::int64_t rows);
  // Sizes every column to `rows` (not zeroed) for direct windows, before any worker writes into
  // them; columns() is that size until Take(). Direct windows are then appended in order: their
  // rows move into place (over the gap that blank or skipped lines left), their categories get
  // the table's codes.
  void GrowColumns(std::int64_t rows);
  std::int64_t column_capacity() const { return columns_.empty() ? 0 : columns_[0].size(); }
  Column& column(std::size_t c) { return columns_[c]; }
  void Append(const TableChunk& chunk);
  std::int64_t rows() const { return rows_; }
  const Schema& schema() const { return schema_; }
  bool with_row_ids() const { return with_row_ids_; }
  // Moves the rows out as a Table and clears the builder (dictionaries are kept, so codes stay
  // stable across the chunks of a stream).
  Table Take();

 private:
  std::int32_t GlobalCode(int c, std::string_view s);
  void AppendMissing(std::size_t c, const TableChunk& chunk, std::int64_t at);
  void AppendDirect(const TableChunk& chunk);
  void AppendRowIds(const TableChunk& chunk);
  void RemapCodes(std::size_t c, const TableChunk& chunk, const std::int32_t* in,
                  std::int32_t* out);

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  Schema schema_;
  bool with_row_ids_;
  std::vector<Column> columns_;
  // Missing masks, held only from a column's first missing value on (empty: none so far): most
  // columns have none, and a mask is a byte a row.
  std::vector<std::vector<std::uint8_t>> missing_;
  std::vector<std::uint8_t> has_missing_;
  std::vector<std::uint64_t> row_ids_;
  std::vector<std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>> dicts_;
  std::vector<std::vector<std::string>> dictionaries_;
  std::vector<std::int32_t> remap_;
  std::int64_t rows_ = 0;
  std::int64_t reserved_ = 0;
};

// Parses the windows of a source through the ordered pipeline. The token pool persists across
// calls, so a stream that calls Read* repeatedly allocates nothing in steady state.
class CsvPipeline {
 public:
  CsvPipeline(CsvWindowSource* source, const CsvOptions& options, int num_fields);
  ~CsvPipeline();

  // Parses windows until the source is exhausted or at least max_bytes were consumed, appending
  // rows to *out from out->rows() on (the caller sets rows to 0 to start fresh). expected_bytes
  // (0 if unknown) sizes the output once. Returns false when the source had nothing left.
  bool ReadDense(const DenseTarget& target, bool row_ids, std::uint64_t expected_bytes,
                 std::uint64_t max_bytes, DenseData* out, ReadReport* report);
  bool ReadTable(TableBuilder* builder, std::uint64_t expected_bytes, std::uint64_t max_bytes,
                 ReadReport* report);

 private:
  struct Token;
  std::string Format(const CsvWindow& w, const WindowError& e,
                     const std::vector<std::string>& names);
  // Adds skipped rows to the report, or throws the fatal error.
  void Account(const CsvWindow& w, std::int64_t rows, std::int64_t skipped, bool failed,
               const std::vector<WindowError>& errors, const std::vector<std::string>& names,
               ReadReport* report);

  CsvWindowSource* source_;
  const CsvOptions options_;
  int num_fields_;
  std::vector<std::unique_ptr<Token>> tokens_;
};

// "file:line:column: <prefix><message>; line N is \"...\"" for a position in a window.
std::string FormatWindowError(CsvWindowSource* source, const CsvWindow& w, std::size_t offset,
                              std::string_view prefix, std::string_view message);

// The default window size for parsing.
inline constexpr std::size_t kWindowBytes = std::size_t{1} << 20;
// The dense path's: it parses straight into the matrix, so a window is only its text, and the
// windows in flight (four per thread) are what its peak memory holds beyond the matrix.
inline constexpr std::size_t kDenseWindowBytes = std::size_t{256} << 10;

// Logs a warning naming `what` when rows were skipped (skipping is never silent).
void WarnIfSkipped(std::string_view what, const ReadReport& report);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_CSV_INTERNAL_H_
