#include "escala/core/matrix.h"

#include <cstdint>

#include <gtest/gtest.h>

#include "escala/core/eigen.h"

namespace escala {
namespace {

TEST(Matrix, IsAlignedAndReusesItsAllocation) {
  MatrixF m(3, 5, 1.0f);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data()) % MatrixF::kAlignment, 0u);
  const float* before = m.data();
  m.Resize(5, 3);  // same size: same storage
  EXPECT_EQ(m.data(), before);
  m.Resize(1, 2);  // smaller: same storage
  EXPECT_EQ(m.data(), before);
  EXPECT_EQ(m.capacity(), 15u);
  EXPECT_THROW(m.Resize(-1, 2), Error);
}

TEST(Matrix, CopyAndMoveAreDeep) {
  MatrixF a(2, 2, 3.0f);
  MatrixF b = a;
  b(0, 0) = 9.0f;
  EXPECT_EQ(a(0, 0), 3.0f);
  MatrixF c = std::move(b);
  EXPECT_EQ(c(0, 0), 9.0f);
}

TEST(MatrixView, StridedRowsAndEigenShareMemory) {
  // A 3x2 view over the first two columns of a 3x4 buffer.
  float buf[12];
  for (int i = 0; i < 12; ++i) buf[i] = static_cast<float>(i);
  MatrixView<float> v(buf, 3, 2, 4);
  EXPECT_FALSE(v.contiguous());
  EXPECT_EQ(v(2, 1), 9.0f);
  auto e = AsEigen(v);
  EXPECT_EQ(e(1, 0), 4.0f);
  e(1, 1) = -1.0f;
  EXPECT_EQ(buf[5], -1.0f);
  MatrixView<const float> cv = v;
  EXPECT_EQ(AsEigen(cv).sum(), 0 + 1 + 4 - 1 + 8 + 9);
  auto rows = v.Rows(1, 2);
  EXPECT_EQ(rows(0, 0), 4.0f);
}

}  // namespace
}  // namespace escala
