// LIBSVM / SVMlight reading into a sparse CSR matrix with labels.
//
// Each line is `label [qid:N] index:value index:value ... [# comment]`. Indices are 1-based by
// default (LibsvmOptions::zero_based for 0-based files) and must increase strictly within a line;
// `qid:` is accepted and ignored; blank and comment-only lines are skipped. Parsing is parallel
// over newline-aligned byte ranges; `.gz` input is decompressed first.
//
// Errors name file:line:column and quote the line; see escala/data/read_report.h for fail/skip.
//
// Thread-safety: reentrant; each call parallelises internally.
#ifndef ESCALA_DATA_LIBSVM_H_
#define ESCALA_DATA_LIBSVM_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "escala/data/csr.h"
#include "escala/data/read_report.h"

namespace escala::data {

struct LibsvmOptions {
  bool zero_based = false;
  // Number of columns; 0 infers max index + 1. An index beyond a given count is an error.
  std::int64_t num_features = 0;
  OnError on_error = OnError::kFail;
  bool row_ids = false;
};

SparseData ReadLibsvm(const std::string& path, const LibsvmOptions& options = {},
                      ReadReport* report = nullptr);
SparseData ParseLibsvm(std::string_view text, const LibsvmOptions& options = {},
                       std::string_view name = "<memory>", ReadReport* report = nullptr);

}  // namespace escala::data

#endif  // ESCALA_DATA_LIBSVM_H_
