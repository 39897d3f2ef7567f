// Dataset: one logical dataset made of many files, and its sharding across workers.
//
// A dataset is named by paths, globs ("data/part-*.csv.gz") or directories (every data file in
// it: the part-* files Spark and Hadoop jobs write; names starting with '_' or '.', such as
// _SUCCESS and .crc files, are ignored). Files are sorted by path, so every worker sees the same
// list. All files share one format (CSV, LIBSVM or NPY; by extension unless given) and, for CSV,
// one header and schema; the schema is inferred on a sample of the first file, so every worker
// infers the same one.
//
// Sharding: Plan(Shard{rank, world}) assigns each worker whole files when there are at least as
// many files as workers and their sizes balance; otherwise it cuts the uncompressed files into
// byte ranges, and each record belongs to the range holding its first byte. Either way, for every
// world size, every row belongs to exactly one shard. Compressed files are never cut.
//
// Thread-safety: a Dataset is immutable after Open(); its const methods may be called
// concurrently.
#ifndef ESCALA_DATA_DATASET_H_
#define ESCALA_DATA_DATASET_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/data/csr.h"
#include "escala/data/csv.h"
#include "escala/data/dense.h"
#include "escala/data/libsvm.h"
#include "escala/data/read_report.h"
#include "escala/data/table.h"

namespace escala::data {

enum class Format { kAuto, kCsv, kLibsvm, kNpy };
std::string_view FormatName(Format format);
// "csv", "libsvm" (or "svm", "svmlight"), "npy", "auto".
Format ParseFormat(std::string_view name);
// The format a file name implies (.csv/.tsv/.txt[.gz] -> CSV, .svm/.libsvm/.svmlight -> LIBSVM,
// .npy -> NPY); kAuto when unknown.
Format FormatFromPath(std::string_view path);

// Which worker, of how many.
struct Shard {
  int rank = 0;
  int world = 1;
};

struct DataFile {
  std::string path;
  std::uint64_t size = 0;   // bytes on disk
  bool compressed = false;  // gzip
};

// A part of one file assigned to a shard: the records whose first byte lies in [begin, end)
// (offsets into the file's decompressed bytes; `whole` means the entire file).
struct FileRange {
  int file = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool whole = true;
};

struct DatasetOptions {
  Format format = Format::kAuto;
  CsvOptions csv;
  LibsvmOptions libsvm;
  // ReadTable() of formats that keep labels apart from the features (NPY with <stem>.labels.npy
  // beside every file, LIBSVM's first field) adds them as a float32 column of this name, unless a
  // feature column already has it; empty: labels are not read into tables.
  std::string label_column = "label";
  // Tables of CSV data hold the float64 columns other than label_column as float32, which halves
  // their memory (what trains on float32 features loses nothing: escala train). schema() keeps
  // the declared float64; table_schema() says what the tables hold.
  bool float32_numbers = false;
};

class Dataset {
 public:
  // Resolves the specs into files. Throws kNotFound when a path or glob matches nothing,
  // kInvalidArgument when formats are mixed, CSV headers differ, or the format is unknown.
  static Dataset Open(std::span<const std::string> specs, DatasetOptions options = {});
  static Dataset Open(const std::string& spec, DatasetOptions options = {});
  // The files the specs name (globs and directories expanded, sorted, without duplicates), as
  // Open() resolves them, without reading any: what an output must not overwrite.
  static std::vector<std::string> ResolvePaths(std::span<const std::string> specs,
                                               Format format = Format::kAuto);

  const std::vector<DataFile>& files() const { return files_; }
  Format format() const { return options_.format; }
  const DatasetOptions& options() const { return options_; }
  std::uint64_t total_bytes() const;
  // The table schema (CSV: header + inference on the first file; NPY: f0..f{n-1} float32;
  // LIBSVM: empty, it has no named columns).
  const Schema& schema() const { return schema_; }
  // The columns of the tables ReadTable() and DatasetStream produce: schema(), with float64
  // columns narrowed under DatasetOptions::float32_numbers.
  Schema table_schema() const;
  // ReadTable() adds a label column options().label_column (see DatasetOptions).
  bool HasSeparateLabels() const;

  // The file ranges of one shard, in file order. Deterministic: every worker computes the same
  // plan for the same (files, world).
  std::vector<FileRange> Plan(Shard shard) const;

  // Reads a shard as a Table with row identities filled: CSV columns as typed; NPY and LIBSVM
  // (densified, at most 64 GiB) as float32 columns f0, f1, ... plus the label column.
  Table ReadTable(Shard shard = {}, ReadReport* report = nullptr) const;
  // Reads a shard straight into dense float32 (CSV fast path, NPY, or LIBSVM densified).
  DenseData ReadDense(const DenseSpec& spec, Shard shard = {}, ReadReport* report = nullptr) const;
  // Reads a shard of a LIBSVM dataset into CSR.
  SparseData ReadSparse(Shard shard = {}, ReadReport* report = nullptr) const;

 private:
  std::vector<DataFile> files_;
  DatasetOptions options_;
  Schema schema_;
  // Per file: where its records start (after a CSV header) and that line's number; for NPY
  // files the header size.
  std::vector<std::uint64_t> data_start_;
  std::vector<std::int64_t> data_line_;
  std::int64_t empty_files_ = 0;

  friend class DatasetStream;
};

}  // namespace escala::data

#endif  // ESCALA_DATA_DATASET_H_
