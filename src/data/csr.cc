#include "escala/data/csr.h"

#include <cstring>

#include "escala/core/error.h"

namespace escala::data {

void CsrMatrix::Validate() const {
  ESCALA_CHECK(rows >= 0 && cols >= 0, kInvalidArgument, "CSR: negative shape {}x{}", rows, cols);
  ESCALA_CHECK(static_cast<std::int64_t>(indptr.size()) == rows + 1, kInvalidArgument,
               "CSR: indptr has {} entries for {} rows", indptr.size(), rows);
  ESCALA_CHECK(indices.size() == values.size(), kInvalidArgument, "CSR: {} indices but {} values",
               indices.size(), values.size());
  ESCALA_CHECK(indptr[0] == 0 && indptr.back() == static_cast<std::int64_t>(values.size()),
               kInvalidArgument, "CSR: indptr must run from 0 to nnz ({}), found {}..{}",
               values.size(), indptr[0], indptr.back());
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto b = indptr[static_cast<std::size_t>(i)];
    const auto e = indptr[static_cast<std::size_t>(i) + 1];
    ESCALA_CHECK(b <= e, kInvalidArgument, "CSR: indptr decreases at row {}", i);
    for (auto k = b; k < e; ++k) {
      const auto c = indices[static_cast<std::size_t>(k)];
      ESCALA_CHECK(c >= 0 && c < cols, kInvalidArgument,
                   "CSR: row {} has column {} outside [0, {})", i, c, cols);
      ESCALA_CHECK(k == b || indices[static_cast<std::size_t>(k) - 1] < c, kInvalidArgument,
                   "CSR: row {} has non-increasing column indices", i);
    }
  }
}

void CsrMatrix::ToDense(MatrixView<float> out, std::int64_t begin) const {
  ESCALA_CHECK(out.cols() == cols, kInvalidArgument,
               "CSR to dense: {} columns for a {}-column "
               "matrix",
               out.cols(), cols);
  ESCALA_CHECK(begin >= 0 && begin + out.rows() <= rows, kOutOfRange,
               "CSR to dense: rows [{}, {}) outside {} rows", begin, begin + out.rows(), rows);
  for (std::int64_t i = 0; i < out.rows(); ++i) {
    float* row = out.row(i);
    std::memset(row, 0, static_cast<std::size_t>(cols) * sizeof(float));
    const auto r = begin + i;
    for (auto k = indptr[static_cast<std::size_t>(r)]; k < indptr[static_cast<std::size_t>(r) + 1];
         ++k) {
      row[indices[static_cast<std::size_t>(k)]] = values[static_cast<std::size_t>(k)];
    }
  }
}

MatrixF CsrMatrix::ToDense() const {
  MatrixF out(rows, cols);
  ToDense(out.view(), 0);
  return out;
}

}  // namespace escala::data
