// DenseData: a dense float32 feature matrix with its labels, the form training consumes.
//
// Readers produce it directly from all-numeric files (the fast path: no Table in between), and
// ToDense() builds it from a Table. DenseSpec says which columns are features and which is the
// label.
//
// Thread-safety: plain values.
#ifndef ESCALA_DATA_DENSE_H_
#define ESCALA_DATA_DENSE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "escala/core/matrix.h"
#include "escala/data/table.h"

namespace escala::data {

// Which columns become features and which is the label.
struct DenseSpec {
  // The label column; empty for no label.
  std::string label;
  // Feature columns in order; empty means every column except the label (and `exclude`).
  std::vector<std::string> features;
  // Columns dropped when `features` is empty (ids, timestamps).
  std::vector<std::string> exclude;
  // Fill DenseData::row_ids (8 bytes a row: what training's splits and row identities use).
  bool row_ids = true;
};

struct DenseData {
  MatrixF features;                        // rows x feature_names.size(), row-major
  std::vector<float> labels;               // rows entries, or empty without a label
  std::vector<std::string> feature_names;  // one per feature column
  std::string label_name;                  // empty without a label
  std::vector<std::uint64_t> row_ids;      // stable row identities; empty if not requested

  std::int64_t rows() const { return features.rows(); }
  std::int64_t cols() const { return features.cols(); }
};

// Resolves `spec` against `schema`: the feature column names in order. Throws kNotFound for an
// unknown column and kInvalidArgument for a categorical feature or label.
std::vector<std::string> ResolveFeatures(const Schema& schema, const DenseSpec& spec);

// Copies a table into dense form (in parallel); row ids are carried over.
DenseData ToDense(const Table& table, const DenseSpec& spec);

}  // namespace escala::data

#endif  // ESCALA_DATA_DENSE_H_
