#include "escala/features/sketches.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "escala/core/thread_communicator.h"
#include "escala/features/correlation.h"
#include "features/radix_sort.h"

namespace escala::features {
namespace {

std::vector<float> Normal(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(3.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

double ExactQuantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

TEST(NumericSummary, MatchesTwoPassAndMergesExactly) {
  const auto v = Normal(10001, 1);
  NumericSummary all, a, b;
  double sum = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    all.Add(v[i]);
    (i < 3000 ? a : b).Add(v[i]);
    sum += v[i];
  }
  const double mean = sum / static_cast<double>(v.size());
  double ss = 0;
  for (float x : v) ss += (x - mean) * (x - mean);
  a.Merge(b);
  for (const auto* s : {&all, &a}) {
    EXPECT_NEAR(s->mean(), mean, 1e-12 * std::fabs(mean));
    EXPECT_NEAR(s->variance(), ss / static_cast<double>(v.size() - 1), 1e-9);
    EXPECT_EQ(s->min(), *std::min_element(v.begin(), v.end()));
    EXPECT_EQ(s->count(), 10001);
  }
  NumericSummary back = NumericSummary::Parse(a.Serialize());
  EXPECT_EQ(back.mean(), a.mean());
}

TEST(NumericSummary, CountsMissingAndInfinite) {
  NumericSummary s;
  s.Add(1);
  s.Add(std::nan(""));
  s.Add(INFINITY);
  s.Add(3);
  EXPECT_EQ(s.count(), 2);
  EXPECT_EQ(s.missing(), 1);
  EXPECT_EQ(s.infinite(), 1);
  EXPECT_DOUBLE_EQ(s.mean(), 2);
}

TEST(QuantileSketch, ExactWhileSmall) {
  const auto v = Normal(500, 2);
  QuantileSketch s;
  for (float x : v) s.Add(x);
  ASSERT_TRUE(s.exact());
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0}) {
    EXPECT_NEAR(s.Quantile(q), ExactQuantile(v, q), 1e-5) << q;
  }
}

TEST(QuantileSketch, RankErrorWithinTheDocumentedBound) {
  const auto v = Normal(300000, 3);
  std::vector<float> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  QuantileSketch s;
  for (float x : v) s.Add(x);
  ASSERT_FALSE(s.exact());
  const double bound = s.RankErrorBound();
  EXPECT_LT(bound, 0.005);
  for (double q = 0.01; q < 1.0; q += 0.01) {
    const double est = s.Quantile(q);
    const double true_rank =
        static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), est) - sorted.begin()) /
        static_cast<double>(sorted.size());
    EXPECT_LE(std::fabs(true_rank - q), bound) << "q=" << q;
  }
}

// Level 0 is radix-sorted on keys built from the bits of the doubles: signs, zeros of both signs,
// subnormals, infinities' neighbours and magnitudes across the whole range order as the values do.
TEST(RadixSort, SortsDoublesAsStdSortDoes) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> exponent(-307, 307);
  for (std::size_t n : {0, 1, 63, 64, 65, 1000, 4097}) {
    std::vector<double> v;
    for (std::size_t i = 0; i < n; ++i) {
      const double m = std::pow(10.0, exponent(rng));
      v.push_back(i % 3 == 0 ? -m : m);
      if (i % 97 == 0) v.back() = i % 2 == 0 ? 0.0 : -0.0;
      if (i % 101 == 0) v.back() = i % 2 == 0 ? 4.9e-324 : -std::numeric_limits<double>::max();
    }
    std::vector<double> expected = v;
    std::sort(expected.begin(), expected.end());
    internal::SortDoubles(v);
    ASSERT_EQ(v.size(), expected.size());
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(v[i], expected[i]) << "n=" << n << " i=" << i;
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  }
  // A byte shared by every key skips its pass; equal values stay together.
  std::vector<double> same(1000, 2.5);
  same[500] = -2.5;
  internal::SortDoubles(same);
  EXPECT_EQ(same.front(), -2.5);
  EXPECT_EQ(same.back(), 2.5);
  for (double k : {-1e300, -1.0, -0.0, 0.0, 1e-310, 3.0}) {
    EXPECT_EQ(std::bit_cast<std::uint64_t>(internal::FromOrderKey(internal::OrderKey(k))),
              std::bit_cast<std::uint64_t>(k));
  }
  EXPECT_LT(internal::OrderKey(-0.0), internal::OrderKey(0.0));
}

TEST(QuantileSketch, OrdersValuesOfEverySignAndMagnitude) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> exponent(-300, 300);
  std::vector<double> v;
  for (int i = 0; i < 100000; ++i) {
    const double m = std::pow(10.0, exponent(rng));
    v.push_back(i % 2 == 0 ? m : -m);
  }
  for (double special : {0.0, -0.0, 4.9e-324, -4.9e-324, 1.0, -1.0})
    v.insert(v.end(), 500, special);
  std::shuffle(v.begin(), v.end(), rng);
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  QuantileSketch s(64);
  for (double x : v) s.Add(x);
  ASSERT_FALSE(s.exact());
  double previous = -std::numeric_limits<double>::infinity();
  for (double q = 0.0; q <= 1.0; q += 0.02) {
    const double est = s.Quantile(q);
    EXPECT_GE(est, previous) << q;
    previous = est;
    const double below =
        static_cast<double>(std::lower_bound(sorted.begin(), sorted.end(), est) - sorted.begin());
    const double upto =
        static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), est) - sorted.begin());
    const double n = static_cast<double>(sorted.size());
    // The estimate's rank range (ties included) comes within the bound of q.
    EXPECT_LE(std::max(0.0, std::max(below / n - q, q - upto / n)), s.RankErrorBound()) << q;
  }
}

TEST(QuantileSketch, MergedShardsStayWithinTheBound) {
  const auto v = Normal(200000, 4);
  std::vector<float> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  QuantileSketch merged;
  for (int part = 0; part < 8; ++part) {
    QuantileSketch s(1024, static_cast<std::uint64_t>(part));
    for (std::size_t i = static_cast<std::size_t>(part); i < v.size(); i += 8) s.Add(v[i]);
    merged.Merge(QuantileSketch::Parse(s.Serialize()));
  }
  EXPECT_EQ(merged.count(), 200000);
  for (double q : {0.01, 0.1, 0.5, 0.9, 0.99}) {
    const double est = merged.Quantile(q);
    const double r =
        static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), est) - sorted.begin()) /
        static_cast<double>(sorted.size());
    EXPECT_LE(std::fabs(r - q), merged.RankErrorBound()) << q;
  }
}

TEST(DistinctCounter, ExactThenWithinHllError) {
  DistinctCounter small;
  for (int i = 0; i < 1000; ++i) small.AddDouble(i % 250);
  EXPECT_TRUE(small.exact());
  EXPECT_EQ(small.Estimate(), 250);
  DistinctCounter big, half1, half2;
  for (int i = 0; i < 200000; ++i) {
    big.AddDouble(i);
    (i % 2 ? half1 : half2).AddDouble(i);
  }
  EXPECT_FALSE(big.exact());
  EXPECT_NEAR(big.Estimate(), 200000, 200000 * 0.03);
  half1.Merge(DistinctCounter::Parse(half2.Serialize()));
  EXPECT_NEAR(half1.Estimate(), big.Estimate(), 1e-9);  // register max is order-independent
}

TEST(FrequentItems, ExactTopAndSpaceSavingBound) {
  FrequentItems f(8);
  for (int i = 0; i < 100; ++i) f.Add("a");
  for (int i = 0; i < 50; ++i) f.Add("b");
  for (int i = 0; i < 30; ++i) f.Add("c");
  EXPECT_TRUE(f.exact());
  auto top = f.Top(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "a");
  EXPECT_EQ(top[0].count, 100);
  for (int i = 0; i < 40; ++i) f.Add("rare" + std::to_string(i));
  EXPECT_FALSE(f.exact());
  top = f.Top(1);
  EXPECT_EQ(top[0].key, "a");
  EXPECT_LE(top[0].count - top[0].error, 100);
  EXPECT_GE(top[0].count, 100);
  const auto back = FrequentItems::Parse(f.Serialize());
  EXPECT_EQ(back.Top(1)[0].key, "a");
  EXPECT_FALSE(back.exact());
}

TEST(FrequentItems, NumericModeSaturates) {
  FrequentItems f(4, FrequentItems::Mode::kNumeric);
  for (double v : {1.0, 2.0, 2.0, 2.0, -0.0, 0.0}) f.AddNumber(v);
  EXPECT_EQ(f.Top(1)[0].key, "2");
  EXPECT_EQ(f.Top(2)[1].count, 2);  // 0 and -0 are one value
  for (int i = 0; i < 10; ++i) f.AddNumber(i + 0.5);
  EXPECT_TRUE(f.saturated());
  EXPECT_TRUE(f.Top(3).empty());
}

TEST(AllMerge, EveryRankGetsTheSameSummary) {
  RunOnThreadRanks(3, [](Communicator& comm) {
    NumericSummary s;
    for (int i = 0; i < 10; ++i) s.Add(comm.rank() * 10 + i);
    const NumericSummary all = AllMerge(s, comm);
    EXPECT_EQ(all.count(), 30);
    EXPECT_DOUBLE_EQ(all.mean(), 14.5);
    EXPECT_EQ(all.max(), 29);
  });
}

TEST(CoMoments, PairwiseCompleteCorrelationMatchesDirectFormula) {
  const int n = 3000;
  MatrixF x(n, 3);
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  for (int i = 0; i < n; ++i) {
    const float a = g(rng);
    x(i, 0) = a;
    x(i, 1) = 0.5f * a + g(rng);
    x(i, 2) = i % 7 == 0 ? NAN : -a + 0.1f * g(rng);
  }
  // Direct pairwise formula in double.
  auto direct = [&](int p, int q) {
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, m = 0;
    for (int i = 0; i < n; ++i) {
      const double u = x(i, p), v = x(i, q);
      if (std::isnan(u) || std::isnan(v)) continue;
      ++m;
      sx += u;
      sy += v;
      sxx += u * u;
      syy += v * v;
      sxy += u * v;
    }
    return (sxy - sx * sy / m) / std::sqrt((sxx - sx * sx / m) * (syy - sy * sy / m));
  };
  CoMoments a({0.1, 0.0, -0.2}), b({0.1, 0.0, -0.2});
  a.AddBlock(x.view().Rows(0, 1234));
  b.AddBlock(x.view().Rows(1234, n - 1234));
  a.Merge(CoMoments::Parse(b.Serialize()));
  for (int p = 0; p < 3; ++p) {
    for (int q = 0; q < 3; ++q) {
      if (p == q) continue;
      EXPECT_NEAR(a.Correlation(p, q), direct(p, q), 1e-6) << p << "," << q;
    }
  }
  EXPECT_EQ(a.PairCount(0, 2), n - (n + 6) / 7);
  EXPECT_DOUBLE_EQ(a.Correlation()[0], 1.0);
}

}  // namespace
}  // namespace escala::features
