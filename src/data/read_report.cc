#include "escala/data/read_report.h"

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala::data {

OnError ParseOnError(const std::string& text) {
  if (text == "fail") return OnError::kFail;
  if (text == "skip") return OnError::kSkip;
  Throw(ErrorCode::kInvalidArgument, "unknown error policy '{}': expected fail or skip", text);
}

void ReadReport::Merge(const ReadReport& other) {
  rows += other.rows;
  skipped_rows += other.skipped_rows;
  bytes += other.bytes;
  files += other.files;
  empty_files += other.empty_files;
  for (const auto& e : other.skipped_examples) {
    if (skipped_examples.size() >= kMaxExamples) break;
    skipped_examples.push_back(e);
  }
}

std::string ReadReport::Summary() const {
  std::string out = fmt::format("{} rows", rows);
  if (skipped_rows > 0) {
    out += fmt::format(", {} malformed rows skipped", skipped_rows);
    if (!skipped_examples.empty()) out += fmt::format(" (first: {})", skipped_examples.front());
  }
  if (empty_files > 0) out += fmt::format(", {} empty files ignored", empty_files);
  return out;
}

}  // namespace escala::data
