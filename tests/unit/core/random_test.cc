#include "escala/core/random.h"

#include <vector>

#include <gtest/gtest.h>

namespace escala {
namespace {

TEST(RandomPermutation, IsABijectionForManySizes) {
  for (std::uint64_t n : {1ull, 2ull, 3ull, 7ull, 64ull, 1000ull, 4097ull, 100003ull}) {
    RandomPermutation p(n, 12345);
    std::vector<bool> seen(n, false);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t j = p.Map(i);
      ASSERT_LT(j, n);
      ASSERT_FALSE(seen[j]) << "n=" << n << " duplicate " << j;
      seen[j] = true;
    }
  }
}

TEST(RandomPermutation, DependsOnTheKeyAndShuffles) {
  const std::uint64_t n = 1000;
  RandomPermutation a(n, 1), b(n, 2);
  int same = 0, fixed = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    same += a.Map(i) == b.Map(i);
    fixed += a.Map(i) == i;
  }
  EXPECT_LT(same, 20);
  EXPECT_LT(fixed, 20);
}

TEST(Random, UnitFromHashIsInRange) {
  double lo = 1, hi = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    const double u = UnitFromHash(Mix64(i));
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  EXPECT_GE(lo, 0.0);
  EXPECT_LT(hi, 1.0);
  EXPECT_LT(lo, 0.01);
  EXPECT_GT(hi, 0.99);
}

}  // namespace
}  // namespace escala
