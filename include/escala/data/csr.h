// CsrMatrix: a sparse float32 matrix in compressed sparse row form, and SparseData (a CSR matrix
// with labels), the result of reading LIBSVM/SVMlight files.
//
// Row i's entries are indices[indptr[i] .. indptr[i+1]) with the matching values; indices within
// a row are strictly increasing. Column indices are 0-based int32.
//
// Thread-safety: plain values; concurrent const access is safe.
#ifndef ESCALA_DATA_CSR_H_
#define ESCALA_DATA_CSR_H_

#include <cstdint>
#include <span>
#include <vector>

#include "escala/core/matrix.h"

namespace escala::data {

struct CsrMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> indptr{0};  // rows + 1 entries
  std::vector<std::int32_t> indices;    // nnz entries
  std::vector<float> values;            // nnz entries

  std::int64_t nnz() const { return static_cast<std::int64_t>(values.size()); }
  std::span<const std::int32_t> row_indices(std::int64_t i) const {
    const auto b = static_cast<std::size_t>(indptr[static_cast<std::size_t>(i)]);
    const auto e = static_cast<std::size_t>(indptr[static_cast<std::size_t>(i) + 1]);
    return std::span<const std::int32_t>(indices).subspan(b, e - b);
  }
  std::span<const float> row_values(std::int64_t i) const {
    const auto b = static_cast<std::size_t>(indptr[static_cast<std::size_t>(i)]);
    const auto e = static_cast<std::size_t>(indptr[static_cast<std::size_t>(i) + 1]);
    return std::span<const float>(values).subspan(b, e - b);
  }

  // Checks the invariants (sizes, monotone indptr, increasing in-range indices); throws
  // kInvalidArgument describing the first violation.
  void Validate() const;
  // Writes rows [begin, begin + out.rows()) densely into `out` (out.cols() must equal cols);
  // absent entries become 0.
  void ToDense(MatrixView<float> out, std::int64_t begin = 0) const;
  MatrixF ToDense() const;
};

struct SparseData {
  CsrMatrix x;
  std::vector<float> labels;           // one per row
  std::vector<std::uint64_t> row_ids;  // stable identities (escala/data/split.h); may be empty
};

}  // namespace escala::data

#endif  // ESCALA_DATA_CSR_H_
