// TreeSHAP contributions against hand-computed cases and against the Shapley values computed by
// their definition (every subset of features) on random trees.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/models/tree_ensemble.h"

namespace escala::models {
namespace {

// A stump on feature 0 at 0.5: cover 10, left (4 rows) 1, right (6 rows) 2; missing goes right.
Tree Stump() {
  Tree t;
  t.AddLeaf(0.0f);
  const std::int32_t l = t.AddLeaf(1.0f), r = t.AddLeaf(2.0f);
  t.feature[0] = 0;
  t.threshold[0] = 0.5f;
  t.left[0] = l;
  t.right[0] = r;
  t.cover = {10.0f, 4.0f, 6.0f};
  return t;
}

MatrixF Contributions(const TreeEnsemble& m, const MatrixF& x) {
  MatrixF out(x.rows(), m.num_outputs() * (m.num_features() + 1));
  m.Contributions(std::as_const(x).view(), out.view());
  return out;
}

TEST(TreeShap, AStumpGivesItsFeatureTheDifferenceFromTheMean) {
  const TreeEnsemble m(Task::kRegression, 2, 1, {0.5f}, {Stump()});
  MatrixF x(2, 2, 0.0f);
  x(1, 0) = std::numeric_limits<float>::quiet_NaN();
  const MatrixF phi = Contributions(m, x);
  // The mean is 0.4 x 1 + 0.6 x 2 = 1.6.
  EXPECT_NEAR(phi(0, 0), 1.0 - 1.6, 1e-6);
  EXPECT_NEAR(phi(0, 1), 0.0, 1e-6);
  EXPECT_NEAR(phi(0, 2), 0.5 + 1.6, 1e-6);  // bias: base score + mean
  EXPECT_NEAR(phi(1, 0), 2.0 - 1.6, 1e-6);  // missing: the default (right) way
}

// Random trees over d features (features may repeat along a path), covers splitting their
// parent's.
struct RandomTrees {
  std::mt19937_64 rng;
  std::int64_t d;

  void Grow(Tree& t, std::int32_t n, int depth) {
    std::uniform_real_distribution<float> u(0.1f, 0.9f);
    std::normal_distribution<float> z;
    const auto i = static_cast<std::size_t>(n);
    if (depth == 0 || u(rng) < 0.2f) {
      t.value[i] = z(rng);
      return;
    }
    const float share = u(rng), cover = t.cover[i];
    const std::int32_t l = t.AddLeaf(0.0f), r = t.AddLeaf(0.0f);
    t.cover[static_cast<std::size_t>(l)] = cover * share;
    t.cover[static_cast<std::size_t>(r)] = cover * (1 - share);
    t.feature[i] = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(d));
    t.threshold[i] = z(rng);
    t.default_left[i] = rng() % 2;
    t.left[i] = l;
    t.right[i] = r;
    Grow(t, l, depth - 1);
    Grow(t, r, depth - 1);
  }

  Tree Make(int depth) {
    Tree t;
    t.AddLeaf(0.0f);
    t.cover[0] = 100.0f;
    Grow(t, 0, depth);
    return t;
  }
};

// The tree's expectation knowing the features in `known` (a bit mask): a node splitting on an
// unknown feature averages its children by cover.
double Expect(const Tree& t, std::size_t n, const float* x, unsigned known) {
  if (t.feature[n] < 0) return t.value[n];
  const std::int32_t f = t.feature[n];
  const auto l = static_cast<std::size_t>(t.left[n]), r = static_cast<std::size_t>(t.right[n]);
  if ((known >> f) & 1u) {
    const bool left = std::isnan(x[f]) ? t.default_left[n] != 0 : x[f] < t.threshold[n];
    return Expect(t, left ? l : r, x, known);
  }
  return (t.cover[l] * Expect(t, l, x, known) + t.cover[r] * Expect(t, r, x, known)) / t.cover[n];
}

// Feature f's Shapley value by its definition: the weighted mean over subsets S not holding f of
// v(S + f) - v(S).
double Shapley(const Tree& t, const float* x, int d, int f) {
  double phi = 0;
  for (unsigned s = 0; s < (1u << d); ++s) {
    if ((s >> f) & 1u) continue;
    const int size = __builtin_popcount(s);
    const double w = std::tgamma(size + 1) * std::tgamma(d - size) / std::tgamma(d + 1);
    phi += w * (Expect(t, 0, x, s | (1u << f)) - Expect(t, 0, x, s));
  }
  return phi;
}

TEST(TreeShap, MatchesTheShapleyDefinitionOnRandomTrees) {
  constexpr int d = 5;
  RandomTrees gen{std::mt19937_64(17), d};
  std::normal_distribution<float> z;
  for (int trial = 0; trial < 20; ++trial) {
    const Tree t = gen.Make(trial % 2 == 0 ? 4 : 6);
    const TreeEnsemble m(Task::kRegression, d, 1, {0.25f}, {t});
    MatrixF x(4, d);
    for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = z(gen.rng);
    x(3, 1) = std::numeric_limits<float>::quiet_NaN();
    const MatrixF phi = Contributions(m, x);
    for (std::int64_t i = 0; i < x.rows(); ++i) {
      double sum = 0;
      for (int f = 0; f < d; ++f) {
        EXPECT_NEAR(phi(i, f), Shapley(t, x.row(i), d, f), 1e-4)
            << "trial " << trial << " row " << i << " feature " << f;
        sum += phi(i, f);
      }
      sum += phi(i, d);
      EXPECT_NEAR(sum, 0.25 + t.value[static_cast<std::size_t>(t.LeafOf(x.row(i)))], 1e-4);
    }
  }
}

TEST(TreeShap, EachOutputsContributionsSumToItsRawScore) {
  constexpr int d = 4, k = 3;
  RandomTrees gen{std::mt19937_64(3), d};
  std::vector<Tree> trees;
  for (int t = 0; t < 4 * k; ++t) trees.push_back(gen.Make(3));
  const TreeEnsemble m(Task::kMulticlass, d, k, {0.1f, -0.2f, 0.3f}, trees);
  MatrixF x(50, d);
  std::normal_distribution<float> z;
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = z(gen.rng);
  const MatrixF phi = Contributions(m, x);
  MatrixF logits(x.rows(), k);
  auto ws = m.NewWorkspace();
  m.Logits(std::as_const(x).view(), logits.view(), *ws);
  for (std::int64_t i = 0; i < x.rows(); ++i) {
    for (int j = 0; j < k; ++j) {
      double sum = 0;
      for (int f = 0; f <= d; ++f) sum += phi(i, j * (d + 1) + f);
      EXPECT_NEAR(sum, logits(i, j), 1e-4) << "row " << i << " output " << j;
    }
  }
}

// Inference walks a breadth-first copy of the trees in lockstep; it must reach the leaves the
// trees themselves do, for missing values, values equal to a threshold and infinities too.
TEST(TreeEnsemble, TheLockstepWalkReachesTheTreesOwnLeaves) {
  constexpr int d = 4;
  RandomTrees gen{std::mt19937_64(11), d};
  std::vector<Tree> trees;
  for (int t = 0; t < 12; ++t) trees.push_back(gen.Make(t % 3 == 0 ? 0 : 5));  // some lone leaves
  const TreeEnsemble m(Task::kRegression, d, 1, {0.5f}, trees);
  MatrixF x(700, d);
  std::normal_distribution<float> z;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (std::int64_t i = 0; i < x.rows(); ++i) {
    for (int j = 0; j < d; ++j) {
      const int kind = static_cast<int>(gen.rng() % 10);
      x(i, j) = kind == 0   ? nan
                : kind == 1 ? (j % 2 ? inf : -inf)
                : kind == 2 ? trees[1].threshold[0]
                            : z(gen.rng);
    }
  }
  MatrixF logits(x.rows(), 1);
  auto ws = m.NewWorkspace();
  m.Logits(std::as_const(x).view(), logits.view(), *ws);
  for (std::int64_t i = 0; i < x.rows(); ++i) {
    double want = 0.5;
    for (const Tree& t : trees) want += t.value[static_cast<std::size_t>(t.LeafOf(x.row(i)))];
    EXPECT_NEAR(logits(i, 0), want, 1e-5) << "row " << i;
  }
}

TEST(TreeShap, TreesWithoutCoversAreRefused) {
  Tree t = Stump();
  t.cover.clear();
  const TreeEnsemble m(Task::kRegression, 2, 1, {0.0f}, {t});
  MatrixF x(1, 2, 0.0f), out(1, 3);
  try {
    m.Contributions(std::as_const(x).view(), out.view());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace escala::models
