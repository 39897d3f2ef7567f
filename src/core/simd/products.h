// Dense products on escala's matrix views, through the dispatched kernels (kernels.h).
#ifndef ESCALA_SRC_CORE_SIMD_PRODUCTS_H_
#define ESCALA_SRC_CORE_SIMD_PRODUCTS_H_

#include <span>

#include "escala/core/matrix.h"

namespace escala::simd {

// C = op(A) op(B), or C += op(A) op(B) when accumulate; op is the transpose when its flag is
// set. Shapes must agree (op(A) is C.rows() x k, op(B) k x C.cols()); C must not overlap A or B.
void MatMul(ConstMatrixViewF a, bool trans_a, ConstMatrixViewF b, bool trans_b, MatrixViewF c,
            bool accumulate);

// y = op(A) x, or y += op(A) x when accumulate. x and y must not overlap A or each other.
void MatVec(ConstMatrixViewF a, bool trans, std::span<const float> x, std::span<float> y,
            bool accumulate);

}  // namespace escala::simd

#endif  // ESCALA_SRC_CORE_SIMD_PRODUCTS_H_
