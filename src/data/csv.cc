#include "escala/data/csv.h"

#include <filesystem>

#include "data/csv_internal.h"
#include "data/input.h"
#include "escala/core/error.h"
#include "escala/core/logging.h"

namespace escala::data {

std::vector<std::string> DefaultMissingValues() {
  return {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"};
}

namespace internal {

void WarnIfSkipped(std::string_view what, const ReadReport& report) {
  if (report.skipped_rows == 0) return;
  ESCALA_LOG_WARN("{}: skipped {} malformed rows (on_error=skip); first: {}", what,
                  report.skipped_rows,
                  report.skipped_examples.empty() ? "" : report.skipped_examples.front());
}

}  // namespace internal

namespace {

using internal::CsvFileInfo;
using internal::CsvInput;

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

CsvInput MakeInput(const CsvFileInfo& info, std::string path, std::string_view memory,
                   std::string name) {
  CsvInput in;
  in.path = std::move(path);
  in.memory = memory;
  in.name = std::move(name);
  in.data_start = info.header.data_start;
  in.data_line = info.header.data_line;
  in.begin = info.header.data_start;
  return in;
}

void Finish(std::string_view name, const ReadReport& part, ReadReport* report) {
  internal::WarnIfSkipped(name, part);
  if (report != nullptr) report->Merge(part);
}

Table ReadTableFrom(const CsvFileInfo& info, CsvInput input, std::uint64_t expected,
                    const CsvOptions& options, ReadReport* report) {
  const std::string name = input.name;
  internal::CsvWindowSource source({std::move(input)}, options, internal::kWindowBytes);
  internal::CsvPipeline pipeline(&source, options, info.schema.num_fields());
  internal::TableBuilder builder(info.schema, options.row_ids);
  ReadReport part;
  part.files = 1;
  pipeline.ReadTable(&builder, expected, kNoLimit, &part);
  Finish(name, part, report);
  return builder.Take();
}

DenseData ReadDenseFrom(const CsvFileInfo& info, CsvInput input, std::uint64_t expected,
                        const DenseSpec& spec, const CsvOptions& options, ReadReport* report) {
  const internal::DenseTarget target = internal::MakeDenseTarget(info.schema, spec);
  const std::string name = input.name;
  internal::CsvWindowSource source({std::move(input)}, options, internal::kWindowBytes);
  internal::CsvPipeline pipeline(&source, options, info.schema.num_fields());
  DenseData out;
  ReadReport part;
  part.files = 1;
  pipeline.ReadDense(target, options.row_ids, expected, kNoLimit, &out, &part);
  Finish(name, part, report);
  return out;
}

std::uint64_t PlainSize(const std::string& path) {
  if (internal::IsGzipFile(path)) return 0;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

Table ParseCsv(std::string_view text, const CsvOptions& options, std::string_view name,
               ReadReport* report) {
  const CsvFileInfo info = internal::ProbeCsvText(text, options, name);
  return ReadTableFrom(info, MakeInput(info, "", text, std::string(name)), text.size(), options,
                       report);
}

Table ReadCsv(const std::string& path, const CsvOptions& options, ReadReport* report) {
  if (options.memory_map) {
    const internal::FileBytes bytes = internal::FileBytes::Open(path);
    return ParseCsv(bytes.view(), options, path, report);
  }
  const CsvFileInfo info = internal::ProbeCsvFile(path, options);
  return ReadTableFrom(info, MakeInput(info, path, {}, path), PlainSize(path), options, report);
}

DenseData ParseCsvDense(std::string_view text, const DenseSpec& spec, const CsvOptions& options,
                        std::string_view name, ReadReport* report) {
  const CsvFileInfo info = internal::ProbeCsvText(text, options, name);
  return ReadDenseFrom(info, MakeInput(info, "", text, std::string(name)), text.size(), spec,
                       options, report);
}

DenseData ReadCsvDense(const std::string& path, const DenseSpec& spec, const CsvOptions& options,
                       ReadReport* report) {
  if (options.memory_map) {
    const internal::FileBytes bytes = internal::FileBytes::Open(path);
    return ParseCsvDense(bytes.view(), spec, options, path, report);
  }
  const CsvFileInfo info = internal::ProbeCsvFile(path, options);
  return ReadDenseFrom(info, MakeInput(info, path, {}, path), PlainSize(path), spec, options,
                       report);
}

Schema InferCsvSchema(const std::string& path, const CsvOptions& options) {
  return internal::ProbeCsvFile(path, options).schema;
}

}  // namespace escala::data
