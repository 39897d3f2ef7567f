// Error policy and the report every reader fills.
//
// Readers either fail on the first malformed record (OnError::kFail, the default: an escala::Error
// naming file, line and column and quoting the text) or skip malformed records
// (OnError::kSkip). Skipping is never silent: the ReadReport counts skipped rows and keeps the
// first messages, and the readers log a warning when any row was skipped.
//
// Thread-safety: plain values.
#ifndef ESCALA_DATA_READ_REPORT_H_
#define ESCALA_DATA_READ_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace escala::data {

enum class OnError { kFail, kSkip };

// "fail" / "skip"; throws kInvalidArgument otherwise.
OnError ParseOnError(const std::string& text);

struct ReadReport {
  std::int64_t rows = 0;          // rows returned
  std::int64_t skipped_rows = 0;  // malformed rows dropped under OnError::kSkip
  std::int64_t bytes = 0;         // input bytes parsed (after decompression)
  std::int64_t files = 0;         // files (or file ranges) read
  std::int64_t empty_files = 0;   // zero-byte files ignored in a multi-file dataset
  // The messages of the first kMaxExamples skipped rows, in file order.
  std::vector<std::string> skipped_examples;
  static constexpr std::size_t kMaxExamples = 10;

  // Adds another report's counts (examples are kept in order, up to kMaxExamples).
  void Merge(const ReadReport& other);
  // "1000 rows, 3 skipped (first: data.csv:12:5: ...)".
  std::string Summary() const;
};

}  // namespace escala::data

#endif  // ESCALA_DATA_READ_REPORT_H_
