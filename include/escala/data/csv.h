// CSV reading: RFC 4180 text into a Table, or all-numeric text straight into dense float32.
//
// Supported: quoted fields with doubled quotes, delimiters and newlines inside quotes, LF or CRLF
// line ends, a header line or none, any single-byte delimiter, comment lines, configurable
// missing-value tokens. Numbers are parsed with fast_float (correctly rounded, no locale).
// Plain files are read with pread (or memory-mapped on request); `.gz` files (detected by their
// magic bytes) are inflated as they are read.
//
// Parsing is parallel: a serial stage cuts the input into windows of about 1 MiB that end on
// record boundaries (a quote- and comment-aware scan), worker tasks parse windows in parallel, and
// a final stage appends their rows in file order. Column types are inferred on a sample of the
// first rows (numbers -> CsvOptions::float_type, anything else -> categorical) unless given in
// column_types.
//
// Errors name file:line:column and quote the offending line; see escala/data/read_report.h for
// the fail/skip policy.
//
// Thread-safety: the functions are reentrant; each call parallelises internally on oneTBB.
#ifndef ESCALA_DATA_CSV_H_
#define ESCALA_DATA_CSV_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "escala/data/dense.h"
#include "escala/data/read_report.h"
#include "escala/data/table.h"

namespace escala::data {

// "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?".
std::vector<std::string> DefaultMissingValues();

struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  // The first record (after skip_lines) holds the column names. Without a header, columns are
  // named c0, c1, ...
  bool header = true;
  // Physical lines skipped before the header or first record (e.g. a metadata line).
  int skip_lines = 0;
  // Lines whose first character is this are ignored; '\0' disables comments.
  char comment = '\0';
  // Unquoted field texts that mean "missing" (surrounding spaces ignored).
  std::vector<std::string> missing_values = DefaultMissingValues();
  // Per-column type overrides by name; other columns are inferred.
  std::vector<Field> column_types;
  // Records sampled from the start of the (first) file for type inference.
  std::int64_t infer_rows = 10000;
  // The type given to inferred numeric columns.
  DataType float_type = DataType::kFloat64;
  // Quoted fields may contain newlines (RFC 4180). Turning this off lets a byte-range shard of a
  // single large file start parsing without scanning the file before it for quotes.
  bool quoted_newlines = true;
  OnError on_error = OnError::kFail;
  // Read plain files through a memory map instead of pread into small reusable windows. The
  // default (pread) keeps memory bounded and avoids page-fault costs; mapping avoids one copy.
  bool memory_map = false;
  // Fill Table::row_ids() / DenseData::row_ids (stable identities, escala/data/split.h).
  bool row_ids = false;
};

// Reads one CSV file (plain or gzip) into a Table.
Table ReadCsv(const std::string& path, const CsvOptions& options = {},
              ReadReport* report = nullptr);
// Parses CSV text in memory; `name` stands for the file in error messages.
Table ParseCsv(std::string_view text, const CsvOptions& options = {},
               std::string_view name = "<memory>", ReadReport* report = nullptr);

// The fast path: an all-numeric CSV straight into float32 features and labels (no Table in
// between). Missing values become NaN. Throws kInvalidArgument naming a categorical column that
// `spec` selects.
DenseData ReadCsvDense(const std::string& path, const DenseSpec& spec = {},
                       const CsvOptions& options = {}, ReadReport* report = nullptr);
DenseData ParseCsvDense(std::string_view text, const DenseSpec& spec = {},
                        const CsvOptions& options = {}, std::string_view name = "<memory>",
                        ReadReport* report = nullptr);

// The schema ReadCsv would produce (reads only the header and the inference sample).
Schema InferCsvSchema(const std::string& path, const CsvOptions& options = {});

}  // namespace escala::data

#endif  // ESCALA_DATA_CSV_H_
