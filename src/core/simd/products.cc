#include "core/simd/products.h"

#include "core/simd/kernels.h"
#include "escala/core/error.h"

namespace escala::simd {

void MatMul(ConstMatrixViewF a, bool trans_a, ConstMatrixViewF b, bool trans_b, MatrixViewF c,
            bool accumulate) {
  const std::int64_t k = trans_a ? a.rows() : a.cols();
  ESCALA_ASSERT((trans_a ? a.cols() : a.rows()) == c.rows());
  ESCALA_ASSERT((trans_b ? b.cols() : b.rows()) == k);
  ESCALA_ASSERT((trans_b ? b.rows() : b.cols()) == c.cols());
  GemmArgs g;
  g.m = c.rows();
  g.n = c.cols();
  g.k = k;
  g.a = a.data();
  g.lda = a.stride();
  g.trans_a = trans_a;
  g.b = b.data();
  g.ldb = b.stride();
  g.trans_b = trans_b;
  g.c = c.data();
  g.ldc = c.stride();
  g.accumulate = accumulate;
  Kernels().gemm(g);
}

void MatVec(ConstMatrixViewF a, bool trans, std::span<const float> x, std::span<float> y,
            bool accumulate) {
  ESCALA_ASSERT(static_cast<std::int64_t>(x.size()) == (trans ? a.rows() : a.cols()));
  ESCALA_ASSERT(static_cast<std::int64_t>(y.size()) == (trans ? a.cols() : a.rows()));
  GemvArgs g;
  g.m = a.rows();
  g.n = a.cols();
  g.a = a.data();
  g.lda = a.stride();
  g.trans = trans;
  g.x = x.data();
  g.y = y.data();
  g.accumulate = accumulate;
  Kernels().gemv(g);
}

}  // namespace escala::simd
