#include "escala/train/gbdt.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/core/thread_communicator.h"
#include "escala/models/factory.h"
#include "escala/models/tree_ensemble.h"
#include "train/tree_median.h"

namespace escala::train {
namespace {

using models::Task;

// n rows of d features; the label a function of the first two (an interaction a linear model
// cannot fit), with NaN in feature 2 every 7th row.
struct Data {
  MatrixF x;
  std::vector<float> y;
};

Data MakeData(std::int64_t n, std::int64_t d, Task task, std::uint64_t seed) {
  Data data{MatrixF(n, d), std::vector<float>(static_cast<std::size_t>(n))};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> z;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) data.x(i, j) = z(rng);
    if (i % 7 == 3) data.x(i, 2) = std::numeric_limits<float>::quiet_NaN();
    const float a = data.x(i, 0), b = data.x(i, 1);
    const float signal = (a > 0) == (b > 0) ? 1.0f : -1.0f;
    const auto at = static_cast<std::size_t>(i);
    if (task == Task::kRegression) data.y[at] = 3 * signal + a + 0.1f * z(rng);
    if (task == Task::kBinary) data.y[at] = signal + 0.3f * z(rng) > 0 ? 1.0f : 0.0f;
    if (task == Task::kMulticlass) data.y[at] = static_cast<float>((a > 0) + (b > 0));
  }
  return data;
}

DataShard Shard(const Data& d) {
  return {std::as_const(d.x).view(), d.y, {}};
}

MatrixF Predict(const models::Model& m, const MatrixF& x) {
  MatrixF out(x.rows(), m.num_outputs());
  auto ws = m.NewWorkspace();
  m.Predict(std::as_const(x).view(), out.view(), *ws);
  return out;
}

// The model's mean absolute error on `test` (its first output).
double MeanAbsoluteError(const models::Model& m, const Data& test) {
  const MatrixF p = Predict(m, test.x);
  double s = 0;
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    s += std::fabs(p(i, 0) - test.y[static_cast<std::size_t>(i)]);
  }
  return s / static_cast<double>(p.rows());
}

double Accuracy(const MatrixF& p, const std::vector<float>& y) {
  int right = 0;
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    int best = 0;
    if (p.cols() == 1) {
      best = p(i, 0) > 0.5f ? 1 : 0;
    } else {
      for (int c = 1; c < p.cols(); ++c) best = p(i, c) > p(i, best) ? c : best;
    }
    right += best == static_cast<int>(y[static_cast<std::size_t>(i)]);
  }
  return static_cast<double>(right) / static_cast<double>(p.rows());
}

std::unique_ptr<models::TreeEnsemble> TrainAlone(const GbdtOptions& o, Task task, int classes,
                                                 const Data& train, const Data* valid = nullptr) {
  auto comm = MakeSelfCommunicator();
  const DataShard v = valid ? Shard(*valid) : DataShard{};
  return TrainGbdt(o, task, classes, Shard(train), valid ? &v : nullptr, *comm);
}

// Byte-identical models from 1 rank and from 2 and 4 thread ranks holding uneven shards (of
// weighted rows when `weighted`).
void ExpectSameTreesOnOneTwoAndFour(const GbdtOptions& o, Task task = Task::kBinary,
                                    bool weighted = false, std::int64_t rows = 2000) {
  Data all = MakeData(rows, 6, task, 3);
  if (!o.categorical.empty()) {  // feature 3 as a code of 9 categories
    for (std::int64_t i = 0; i < all.x.rows(); ++i) {
      all.x(i, 3) = static_cast<float>(static_cast<int>(std::fabs(all.x(i, 3)) * 4) % 9);
    }
  }
  std::vector<float> w;
  for (std::int64_t i = 0; weighted && i < all.x.rows(); ++i) w.push_back(0.3f * (i % 7));
  auto self = MakeSelfCommunicator();
  const std::string alone = models::SerializeModel(
      *TrainGbdt(o, task, 0, {std::as_const(all.x).view(), all.y, {}, w}, nullptr, *self));
  for (int world : {2, 4}) {
    std::vector<std::string> got(static_cast<std::size_t>(world));
    RunOnThreadRanks(world, [&](Communicator& comm) {
      // Uneven contiguous shards, with their global row ids.
      const std::int64_t n = all.x.rows();
      const std::int64_t begin = n * comm.rank() * comm.rank() / (world * world);
      const std::int64_t end = n * (comm.rank() + 1) * (comm.rank() + 1) / (world * world);
      std::vector<std::uint64_t> ids;
      for (std::int64_t i = begin; i < end; ++i) ids.push_back(static_cast<std::uint64_t>(i));
      const std::span<const float> y(all.y.data() + begin, static_cast<std::size_t>(end - begin));
      const std::span<const float> wr =
          weighted ? std::span<const float>(w).subspan(static_cast<std::size_t>(begin),
                                                       static_cast<std::size_t>(end - begin))
                   : std::span<const float>();
      const DataShard shard{std::as_const(all.x).view().Rows(begin, end - begin), y, ids, wr};
      const auto model = TrainGbdt(o, task, 0, shard, nullptr, comm);
      got[static_cast<std::size_t>(comm.rank())] = models::SerializeModel(*model);
    });
    for (const auto& g : got) EXPECT_EQ(g, alone) << world << " workers";
  }
}

TEST(Gbdt, LearnsAnInteractionInEveryTask) {
  GbdtOptions o;
  o.rounds = 30;
  o.max_depth = 3;
  for (Task task : {Task::kRegression, Task::kBinary, Task::kMulticlass}) {
    const Data train = MakeData(3000, 5, task, 1), test = MakeData(1000, 5, task, 2);
    const auto model = TrainAlone(o, task, task == Task::kMulticlass ? 3 : 0, train);
    const MatrixF p = Predict(*model, test.x);
    if (task == Task::kRegression) {
      double se = 0;
      for (std::int64_t i = 0; i < p.rows(); ++i) {
        se += std::pow(p(i, 0) - test.y[static_cast<std::size_t>(i)], 2);
      }
      // The target's variance is about 10; the trees explain nearly all of it.
      EXPECT_LT(se / static_cast<double>(p.rows()), 0.5);
    } else {
      EXPECT_GT(Accuracy(p, test.y), task == Task::kBinary ? 0.9 : 0.95) << TaskName(task);
    }
    EXPECT_EQ(model->trees().size(), static_cast<std::size_t>(30 * model->num_outputs()));
    EXPECT_LE(model->trees()[0].Depth(), 3);
  }
}

TEST(Gbdt, WideBinsTakeTwoBytesAndLearnAsWell) {
  GbdtOptions o;
  o.rounds = 20;
  o.max_bin = 1000;  // above 255: two-byte bin indices
  const Data train = MakeData(3000, 4, Task::kBinary, 11),
             test = MakeData(1000, 4, Task::kBinary, 12);
  const auto model = TrainAlone(o, Task::kBinary, 0, train);
  EXPECT_GT(Accuracy(Predict(*model, test.x), test.y), 0.9);
}

TEST(Gbdt, OneTwoAndFourWorkersGrowTheSameTrees) {
  GbdtOptions plain;
  plain.rounds = 8;
  plain.max_depth = 4;
  plain.bin_sample_rows = 500;  // the edges come from a sample: the same rows for any split
  GbdtOptions sampled = plain;  // rows and features sampled, leaves bounded by row count
  sampled.subsample = 0.7;
  sampled.colsample_bytree = 0.8;
  sampled.colsample_bynode = 0.7;
  sampled.min_data_in_leaf = 20;
  sampled.seed = 42;
  GbdtOptions leafwise = plain;
  leafwise.max_leaves = 12;
  leafwise.max_depth = 8;
  GbdtOptions monotone = plain;
  monotone.monotone = {1, -1, 0, 0, 0, 0};
  GbdtOptions categorical = plain;
  categorical.categorical = {0, 0, 0, 9, 0, 0};
  for (const GbdtOptions& o : {plain, sampled, leafwise, monotone, categorical}) {
    ExpectSameTreesOnOneTwoAndFour(o);
  }
  // Nodes of 1024 rows or more add their gradient pairs packed two to a 64-bit integer, unpacked
  // every 8191 rows; smaller ones add them as they are. Alone, the root's 2000 (or 20000) rows go
  // packed; a shard's 125 do not: identical trees check one way against the other.
  GbdtOptions shallow = plain;
  shallow.rounds = 3;
  shallow.max_bin = 255;
  ExpectSameTreesOnOneTwoAndFour(shallow, Task::kBinary, false, 20000);
  ExpectSameTreesOnOneTwoAndFour(shallow, Task::kRegression, true, 20000);
  // Absolute error: every leaf's median is global (with and without weights, sampled rows,
  // leaf-wise growth).
  for (GbdtOptions o : {plain, sampled, leafwise}) {
    o.objective = "absolute_error";
    ExpectSameTreesOnOneTwoAndFour(o, Task::kRegression);
    ExpectSameTreesOnOneTwoAndFour(o, Task::kRegression, true);
  }
}

// Feature 0 is a category code (12 categories, every 9th row missing) where y = 1 exactly for
// categories 2, 5, 7 and 11; feature 1 is noise.
Data CategoryData(std::int64_t n, std::uint64_t seed) {
  Data d{MatrixF(n, 2), std::vector<float>(static_cast<std::size_t>(n))};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> z;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<int>(rng() % 12);
    d.x(i, 0) = i % 9 == 4 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(c);
    d.x(i, 1) = z(rng);
    d.y[static_cast<std::size_t>(i)] = c == 2 || c == 5 || c == 7 || c == 11 ? 1.0f : 0.0f;
  }
  return d;
}

TEST(Gbdt, CategoriesSplitAsSetsInOneStep) {
  const Data train = CategoryData(3000, 1), test = CategoryData(1000, 2);
  GbdtOptions o;
  o.rounds = 20;
  o.max_depth = 1;  // stumps: only a set split can separate {2, 5, 7, 11}
  o.categorical = {12, 0};
  const auto model = TrainAlone(o, Task::kBinary, 0, train);
  const models::Tree& first = model->trees()[0];
  ASSERT_TRUE(first.IsCategorical(0));
  std::vector<int> left;
  for (int c = 0; c < 12; ++c) {
    if (first.InCategorySet(0, static_cast<float>(c))) left.push_back(c);
  }
  const bool set = left == std::vector<int>{2, 5, 7, 11};
  const bool complement = left == std::vector<int>{0, 1, 3, 4, 6, 8, 9, 10};
  EXPECT_TRUE(set || complement) << ::testing::PrintToString(left);
  // Rows with a missing category are as often 1 as the data: only their own rows say where they go.
  double right = 0, known = 0;
  const MatrixF p = Predict(*model, test.x);
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    if (std::isnan(test.x(i, 0))) continue;
    ++known;
    right += (p(i, 0) > 0.5f) == (test.y[static_cast<std::size_t>(i)] > 0.5f);
  }
  EXPECT_EQ(right, known);
  // As numbers the same stumps cannot: no threshold isolates the set.
  o.categorical.clear();
  EXPECT_LT(Accuracy(Predict(*TrainAlone(o, Task::kBinary, 0, train), test.x), test.y), 0.85);
}

TEST(Gbdt, UnseenCategoriesGoRightAndSavedSetsPredictTheSame) {
  const Data train = CategoryData(2000, 3);
  GbdtOptions o;
  o.rounds = 5;
  o.max_depth = 2;
  o.categorical = {12, 0};
  const auto model = TrainAlone(o, Task::kBinary, 0, train);
  const auto loaded = models::ParseModel(models::SerializeModel(*model));
  MatrixF x(4, 2, 0.0f);
  x(0, 0) = 5;
  x(1, 0) = -1;    // unseen at fit time: ordinal's code for it
  x(2, 0) = 40;    // past every code
  x(3, 0) = 2.5f;  // not a code
  const MatrixF a = Predict(*model, x), b = Predict(*loaded, x);
  for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(a(i, 0), b(i, 0));
  const models::Tree& t = model->trees()[0];
  for (float v : {-1.0f, 40.0f, 2.5f}) EXPECT_FALSE(t.GoesLeft(0, v)) << v;
  // Contributions with set splits still sum to the raw score.
  MatrixF phi(4, 3), logits(4, 1);
  model->Contributions(std::as_const(x).view(), phi.view());
  auto ws = model->NewWorkspace();
  model->Logits(std::as_const(x).view(), logits.view(), *ws);
  for (std::int64_t i = 0; i < 4; ++i)
    EXPECT_NEAR(phi(i, 0) + phi(i, 1) + phi(i, 2), logits(i, 0), 1e-4);
  o.categorical = {300, 0};  // more categories than bins
  try {
    TrainAlone(o, Task::kBinary, 0, train);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("max_bin"), std::string::npos) << e.message();
  }
}

TEST(Gbdt, MonotoneConstraintsHoldEverywhere) {
  // y rises with x0 overall but wiggles (sin), falls with x1, and x2 interacts with x0.
  const std::int64_t n = 4000;
  Data d{MatrixF(n, 3), std::vector<float>(static_cast<std::size_t>(n))};
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<float> u(-3, 3);
  for (std::int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < 3; ++j) d.x(i, j) = u(rng);
    d.y[static_cast<std::size_t>(i)] =
        d.x(i, 0) + 1.5f * std::sin(3 * d.x(i, 0)) - d.x(i, 1) + d.x(i, 0) * d.x(i, 2) * 0.5f;
  }
  GbdtOptions o;
  o.rounds = 40;
  o.max_depth = 4;
  const auto increasing_in_x0 = [&](const models::Model& m) {
    // For 20 random rows, predictions along a grid of x0 never go down.
    bool ok = true;
    for (int r = 0; r < 20; ++r) {
      MatrixF grid(61, 3);
      const float x1 = u(rng), x2 = u(rng);
      for (int k = 0; k <= 60; ++k) {
        grid(k, 0) = -3.0f + 0.1f * static_cast<float>(k);
        grid(k, 1) = x1;
        grid(k, 2) = x2;
      }
      const MatrixF p = Predict(m, grid);
      for (int k = 1; k <= 60; ++k) ok = ok && p(k, 0) >= p(k - 1, 0) - 1e-6f;
    }
    return ok;
  };
  EXPECT_FALSE(increasing_in_x0(*TrainAlone(o, Task::kRegression, 0, d)));  // the sin shows
  o.monotone = {1, -1, 0};
  const auto model = TrainAlone(o, Task::kRegression, 0, d);
  EXPECT_TRUE(increasing_in_x0(*model));
  // And it still learns: the constrained fit explains most of the variance.
  const MatrixF p = Predict(*model, d.x);
  double se = 0, var = 0, mean = 0;
  for (float v : d.y) mean += v / static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i) {
    se += std::pow(p(i, 0) - d.y[static_cast<std::size_t>(i)], 2);
    var += std::pow(d.y[static_cast<std::size_t>(i)] - mean, 2);
  }
  EXPECT_LT(se, 0.35 * var);
  o.monotone = {1, 2, 0};
  EXPECT_THROW(TrainAlone(o, Task::kRegression, 0, d), Error);
  o.monotone = {1, 0};  // one per feature
  EXPECT_THROW(TrainAlone(o, Task::kRegression, 0, d), Error);
}

TEST(Gbdt, LeafWiseGrowthStopsAtMaxLeaves) {
  GbdtOptions o;
  o.rounds = 20;
  o.max_depth = 10;
  o.max_leaves = 6;
  const Data train = MakeData(3000, 5, Task::kRegression, 1),
             test = MakeData(1000, 5, Task::kRegression, 2);
  const auto model = TrainAlone(o, Task::kRegression, 0, train);
  int deepest = 0;
  for (const auto& t : model->trees()) {
    EXPECT_EQ(std::count(t.feature.begin(), t.feature.end(), -1), 6);
    deepest = std::max(deepest, t.Depth());
  }
  EXPECT_GT(deepest, 3);  // unbalanced: deeper than a depth-wise tree of 6 leaves would be
  const MatrixF p = Predict(*model, test.x);
  double se = 0;
  for (std::int64_t i = 0; i < p.rows(); ++i) {
    se += std::pow(p(i, 0) - test.y[static_cast<std::size_t>(i)], 2);
  }
  EXPECT_LT(se / static_cast<double>(p.rows()), 0.5);
}

TEST(Gbdt, RowAndFeatureSamplingChangeTheTreesButStillLearn) {
  GbdtOptions o;
  o.rounds = 30;
  o.max_depth = 3;
  const Data train = MakeData(3000, 5, Task::kBinary, 1),
             test = MakeData(1000, 5, Task::kBinary, 2);
  const std::string plain = models::SerializeModel(*TrainAlone(o, Task::kBinary, 0, train));
  o.subsample = 0.6;
  o.colsample_bynode = 0.6;
  const auto model = TrainAlone(o, Task::kBinary, 0, train);
  EXPECT_NE(models::SerializeModel(*model), plain);
  EXPECT_GT(Accuracy(Predict(*model, test.x), test.y), 0.9);
  o.seed = 7;  // another seed, other samples
  EXPECT_NE(models::SerializeModel(*TrainAlone(o, Task::kBinary, 0, train)),
            models::SerializeModel(*model));
}

TEST(Gbdt, MinDataInLeafBoundsEveryLeaf) {
  GbdtOptions o;
  o.rounds = 5;
  o.max_depth = 8;
  o.min_child_weight = 0;
  o.min_data_in_leaf = 40;
  const Data train = MakeData(2000, 4, Task::kRegression, 4);
  const auto model = TrainAlone(o, Task::kRegression, 0, train);
  // Squared error: a node's cover (hessian sum) is its row count.
  std::size_t leaves = 0;
  for (const auto& t : model->trees()) {
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t.feature[i] >= 0) continue;
      EXPECT_GE(t.cover[i], 40.0f);
      ++leaves;
    }
  }
  EXPECT_GT(leaves, 5u * 8u);  // it did split
}

TEST(Gbdt, MissingValuesTakeTheLearnedDirection) {
  // y is 1 exactly where feature 0 is missing: one split on the missing values does it.
  const std::int64_t n = 1000;
  Data d{MatrixF(n, 1), std::vector<float>(static_cast<std::size_t>(n))};
  for (std::int64_t i = 0; i < n; ++i) {
    const bool missing = i % 4 == 0;
    d.x(i, 0) = missing ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(i % 10);
    d.y[static_cast<std::size_t>(i)] = missing ? 1.0f : 0.0f;
  }
  GbdtOptions o;
  o.rounds = 20;
  o.max_depth = 1;
  const auto model = TrainAlone(o, Task::kBinary, 0, d);
  const MatrixF p = Predict(*model, d.x);
  for (std::int64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(p(i, 0) > 0.5f, i % 4 == 0) << "row " << i << ": " << p(i, 0);
  }
}

TEST(Gbdt, SavedModelPredictsTheSame) {
  GbdtOptions o;
  o.rounds = 10;
  const Data train = MakeData(1500, 4, Task::kMulticlass, 5);
  const auto model = TrainAlone(o, Task::kMulticlass, 3, train);
  const auto loaded = models::ParseModel(models::SerializeModel(*model));
  EXPECT_EQ(loaded->kind(), "gbdt");
  const MatrixF a = Predict(*model, train.x), b = Predict(*loaded, train.x);
  for (std::int64_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.data()[i], b.data()[i]);
  // The label depends on features 0 and 1 only: they carry the gain, and the stats survive.
  const models::FeatureImportance imp =
      dynamic_cast<const models::TreeEnsemble&>(*loaded).Importance();
  ASSERT_EQ(imp.gain.size(), 4u);
  EXPECT_GT(imp.gain[0] + imp.gain[1], 10 * (imp.gain[2] + imp.gain[3]));
  EXPECT_GT(imp.cover[0], 0.0);
  EXPECT_GT(imp.splits[0], 0);
  EXPECT_EQ(models::SerializeModel(*loaded), models::SerializeModel(*model));
}

TEST(Gbdt, ValidationLossFallsAndProgressIsReported) {
  GbdtOptions o;
  o.rounds = 15;
  const Data train = MakeData(2000, 4, Task::kBinary, 7),
             valid = MakeData(500, 4, Task::kBinary, 8);
  auto comm = MakeSelfCommunicator();
  std::vector<double> losses;
  const DataShard v = Shard(valid);
  TrainGbdt(o, Task::kBinary, 0, Shard(train), &v, *comm, [&](int round, double loss) {
    EXPECT_EQ(round, static_cast<int>(losses.size()) + 1);
    losses.push_back(loss);
  });
  ASSERT_EQ(losses.size(), 15u);
  EXPECT_LT(losses.back(), 0.5 * losses.front());
}

TEST(Gbdt, BadOptionsAndLabelsAreRefusedNamingThem) {
  const Data d = MakeData(100, 3, Task::kBinary, 9);
  const auto refused = [&](GbdtOptions o, const std::string& name) {
    try {
      TrainAlone(o, Task::kBinary, 0, d);
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(e.message().find(name), std::string::npos) << e.message();
    }
  };
  GbdtOptions o;
  o.max_bin = 1;
  refused(o, "max_bin");
  o = {};
  o.max_depth = 0;
  refused(o, "max_depth");
  o = {};
  o.learning_rate = 0;
  refused(o, "learning_rate");
  o = {};
  o.subsample = 0;
  refused(o, "subsample");
  o = {};
  o.colsample_bynode = 1.5;
  refused(o, "colsample_bynode");
  o = {};
  o.objective = "poisson";  // a regression objective on a binary task
  refused(o, "objective");
  o = {};
  o.objective = "gamma";
  refused(o, "objective");
  o = {};
  o.early_stopping = 5;  // with no validation rows
  refused(o, "early_stopping");
  Data bad = d;
  bad.y[17] = 2.0f;
  try {
    TrainAlone(GbdtOptions{}, Task::kBinary, 0, bad);
    ADD_FAILURE() << "a label of 2 was accepted for a binary model";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("row 17"), std::string::npos) << e.message();
  }
}

TEST(Gbdt, OnlyConstantOrMissingFeaturesAreRefused) {
  const std::int64_t n = 200;
  Data d{MatrixF(n, 2, 1.0f), std::vector<float>(static_cast<std::size_t>(n))};
  for (std::int64_t i = 0; i < n; ++i) {
    d.x(i, 1) = std::numeric_limits<float>::quiet_NaN();  // all missing
    d.y[static_cast<std::size_t>(i)] = i % 4 == 0 ? 1.0f : 0.0f;
  }
  // Nothing to split on: refused, rather than a silent constant model.
  try {
    TrainAlone(GbdtOptions{}, Task::kBinary, 0, d);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("constant or missing"), std::string::npos) << e.message();
  }
  // One varying feature beside them is enough, and the others are never split on.
  for (std::int64_t i = 0; i < n; ++i) d.x(i, 0) = static_cast<float>(i % 4);
  const auto model = TrainAlone(GbdtOptions{}, Task::kBinary, 0, d);
  EXPECT_EQ(model->Importance().splits[1], 0);
  EXPECT_GT(Accuracy(Predict(*model, d.x), d.y), 0.99);
}

TEST(Gbdt, HuberResistsOutliersWhereSquaredErrorDoesNot) {
  // y = x0 + noise, with every 20th label thrown far off.
  Data train = MakeData(3000, 3, Task::kRegression, 21);
  const Data test = MakeData(1000, 3, Task::kRegression, 22);
  for (std::size_t i = 0; i < train.y.size(); i += 20) train.y[i] += 200.0f;
  GbdtOptions o;
  o.rounds = 60;
  o.max_depth = 3;
  o.learning_rate = 0.3f;
  const auto mae = [&](const models::Model& m) { return MeanAbsoluteError(m, test); };
  const double squared = mae(*TrainAlone(o, Task::kRegression, 0, train));
  o.objective = "huber";
  o.huber_delta = 2.0;
  o.rounds = 200;  // gradients clipped at delta: smaller steps
  const auto huber = TrainAlone(o, Task::kRegression, 0, train);
  EXPECT_EQ(huber->objective(), "huber");
  EXPECT_LT(mae(*huber), 0.7 * squared) << "huber " << mae(*huber) << " squared " << squared;
}

// Seven rows, x0 0 or 1: one split, the leaves' values checked by hand. The label median is 5;
// the residuals left are -4 -3 5 -1 (median -2, the mean of the two middle ones), right 0 2 95
// (median 2). Checked against XGBoost 1.7's reg:absoluteerror on the same rows: base 5, leaves
// -2 and 2 at eta 1. With weights 1 1 1 3 | 1 2 1 the label median is 4.5 (the midpoint of 4,
// where the cumulative weight reaches half, and 5, where it passes it), leaving residuals -3.5
// -2.5 5.5 -0.5 (median -0.5) and 0.5 2.5 95.5 (median 2.5).
TEST(Gbdt, AbsoluteErrorLeavesAreTheMediansOfTheirResiduals) {
  Data d{MatrixF(7, 1), {1, 2, 10, 4, 5, 7, 100}};
  for (std::int64_t i = 0; i < 7; ++i) d.x(i, 0) = i < 4 ? 0.0f : 1.0f;
  GbdtOptions o;
  o.objective = "absolute_error";
  o.rounds = 1;
  o.max_depth = 1;
  o.learning_rate = 0.5f;
  const auto leaves = [](const models::TreeEnsemble& m) {
    const models::Tree& t = m.trees().at(0);
    EXPECT_EQ(t.feature[0], 0);
    return std::pair{t.value[static_cast<std::size_t>(t.left[0])],
                     t.value[static_cast<std::size_t>(t.right[0])]};
  };
  const auto plain = TrainAlone(o, Task::kRegression, 0, d);
  EXPECT_EQ(plain->objective(), "absolute_error");
  EXPECT_EQ(plain->base_score()[0], 5.0f);
  EXPECT_EQ(leaves(*plain), std::pair(-1.0f, 1.0f));  // learning_rate 0.5 times -2 and 2

  const std::vector<float> w = {1, 1, 1, 3, 1, 2, 1};
  auto comm = MakeSelfCommunicator();
  const auto weighted =
      TrainGbdt(o, Task::kRegression, 0, {std::as_const(d.x).view(), d.y, {}, w}, nullptr, *comm);
  EXPECT_EQ(weighted->base_score()[0], 4.5f);
  EXPECT_EQ(leaves(*weighted), std::pair(-0.25f, 1.25f));

  // Integer weights train what duplicated rows do.
  Data copies{MatrixF(10, 1), {}};
  for (std::size_t i = 0, at = 0; i < w.size(); ++i) {
    for (int c = 0; c < static_cast<int>(w[i]); ++c, ++at) {
      copies.x(static_cast<std::int64_t>(at), 0) = d.x(static_cast<std::int64_t>(i), 0);
      copies.y.push_back(d.y[i]);
    }
  }
  const auto duplicated = TrainAlone(o, Task::kRegression, 0, copies);
  EXPECT_EQ(duplicated->base_score(), weighted->base_score());
  EXPECT_EQ(leaves(*duplicated), leaves(*weighted));
}

TEST(Gbdt, AbsoluteErrorResistsOutliersWhereSquaredErrorDoesNot) {
  // y = 3 signal + x0 + noise, with every 20th label thrown far off (all upwards: the mean moves,
  // the median hardly).
  Data train = MakeData(3000, 3, Task::kRegression, 21);
  const Data test = MakeData(1000, 3, Task::kRegression, 22);
  for (std::size_t i = 0; i < train.y.size(); i += 20) train.y[i] += 200.0f;
  GbdtOptions o;
  o.rounds = 60;
  o.max_depth = 3;
  const auto mae = [&](const models::Model& m) { return MeanAbsoluteError(m, test); };
  const double squared = mae(*TrainAlone(o, Task::kRegression, 0, train));
  o.objective = "absolute_error";
  std::vector<double> losses;
  auto comm = MakeSelfCommunicator();
  const DataShard valid = Shard(test);
  const auto l1 = TrainGbdt(o, Task::kRegression, 0, Shard(train), &valid, *comm,
                            [&](int, double loss) { losses.push_back(loss); });
  EXPECT_LT(mae(*l1), 0.5 * squared) << "absolute_error " << mae(*l1) << " squared " << squared;
  // The validation loss reported is the mean absolute error.
  EXPECT_NEAR(losses.back(), mae(*l1), 1e-5);
  EXPECT_EQ(ObjectiveMetric("absolute_error"), "mae");
}

// The distributed median against a sort, on 1, 2 and 4 thread ranks: negative and positive
// values, ties, an empty group, odd and even counts, and fixed-point weights.
TEST(TreeMedian, EqualsTheSortedMedianOnAnyNumberOfRanks) {
  std::mt19937_64 rng(8);
  std::uniform_int_distribution<int> pick(-6, 6);
  std::vector<std::vector<float>> groups = {{}, {3.5f}, {2.0f, -1.0f}, {-0.0f, 0.0f, 0.0f}};
  for (int n : {7, 100, 1001}) {
    std::vector<float> g;
    for (int i = 0; i < n; ++i) g.push_back(static_cast<float>(pick(rng)) * 0.75f + 1e-3f * i);
    groups.push_back(g);
  }
  std::vector<double> expected;
  for (auto g : groups) {
    std::sort(g.begin(), g.end());
    const std::size_t n = g.size();
    expected.push_back(n == 0 ? 0.0 : (static_cast<double>(g[(n - 1) / 2]) + g[n / 2]) / 2);
  }
  for (int world : {1, 2, 4}) {
    RunOnThreadRanks(world, [&](Communicator& comm) {
      // Rank r holds every world-th value of each group, from the r-th.
      std::vector<float> values;
      std::vector<std::size_t> offsets{0};
      for (const auto& g : groups) {
        for (std::size_t i = static_cast<std::size_t>(comm.rank()); i < g.size();
             i += static_cast<std::size_t>(world)) {
          values.push_back(g[i]);
        }
        offsets.push_back(values.size());
      }
      const auto fixed = trees::FixedWeights({}, values.size(), comm);
      EXPECT_EQ(trees::GlobalMedians(values, offsets, fixed, comm), expected) << world;
      EXPECT_EQ(trees::GlobalMedians(values, offsets, {}, comm), expected) << world;
    });
  }
}

TEST(Gbdt, PoissonPredictsPositiveRatesAndRefusesNegativeCounts) {
  // Counts with rate exp(0.8 x0): the model predicts the rate, exp(score).
  const std::int64_t n = 20000;
  Data d{MatrixF(n, 2), std::vector<float>(static_cast<std::size_t>(n))};
  std::mt19937_64 rng(5);
  std::normal_distribution<float> z;
  for (std::int64_t i = 0; i < n; ++i) {
    d.x(i, 0) = z(rng);
    d.x(i, 1) = z(rng);
    std::poisson_distribution<int> count(std::exp(0.8 * d.x(i, 0)));
    d.y[static_cast<std::size_t>(i)] = static_cast<float>(count(rng));
  }
  GbdtOptions o;
  o.objective = "poisson";
  o.rounds = 60;
  o.max_depth = 2;
  const auto model = TrainAlone(o, Task::kRegression, 0, d);
  MatrixF probe(3, 2, 0.0f);
  probe(0, 0) = -1.5f;
  probe(2, 0) = 1.5f;
  const MatrixF p = Predict(*model, probe);
  for (std::int64_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(p(i, 0), std::exp(0.8 * probe(i, 0)), 0.25 * std::exp(0.8 * probe(i, 0)))
        << "x0 " << probe(i, 0);
  }
  d.y[33] = -1.0f;
  try {
    TrainAlone(o, Task::kRegression, 0, d);
    ADD_FAILURE() << "a negative count was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("row 33"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("poisson"), std::string::npos) << e.message();
  }
  std::fill(d.y.begin(), d.y.end(), 0.0f);
  EXPECT_THROW(TrainAlone(o, Task::kRegression, 0, d), Error);  // all zero: no finite log-rate
}

TEST(Gbdt, EarlyStoppingKeepsTheBestRound) {
  // Few rows, deep trees, a large step: the validation loss turns up early.
  const Data train = MakeData(300, 6, Task::kBinary, 31),
             valid = MakeData(300, 6, Task::kBinary, 32);
  GbdtOptions o;
  o.rounds = 300;
  o.max_depth = 8;
  o.learning_rate = 0.5f;
  o.min_child_weight = 0;
  o.early_stopping = 5;
  auto comm = MakeSelfCommunicator();
  std::vector<double> losses;
  const DataShard v = Shard(valid);
  const auto model = TrainGbdt(o, Task::kBinary, 0, Shard(train), &v, *comm,
                               [&](int, double loss) { losses.push_back(loss); });
  ASSERT_LT(losses.size(), 300u);
  const auto best =
      static_cast<std::size_t>(std::min_element(losses.begin(), losses.end()) - losses.begin());
  EXPECT_EQ(model->trees().size(), best + 1);
  EXPECT_EQ(losses.size(), best + 1 + 5);
}

std::unique_ptr<models::TreeEnsemble> ForestAlone(const GbdtOptions& o, Task task, int classes,
                                                  const Data& train, ForestReport* report) {
  auto comm = MakeSelfCommunicator();
  return TrainForest(o, task, classes, Shard(train), *comm, {}, report);
}

// A warm start continues boosting where the earlier model stopped: 10 rounds and then 10 more
// grow exactly the trees of 20 rounds at once (no sampling: nothing depends on the round).
TEST(Gbdt, AWarmStartContinuesBoostingExactly) {
  for (Task task : {Task::kRegression, Task::kBinary, Task::kMulticlass}) {
    const int classes = task == Task::kMulticlass ? 3 : 0;
    const Data data = MakeData(1500, 4, task, 21);
    GbdtOptions o;
    o.max_depth = 3;
    o.rounds = 20;
    const auto whole = TrainAlone(o, task, classes, data);
    o.rounds = 10;
    const auto first = TrainAlone(o, task, classes, data);
    auto comm = MakeSelfCommunicator();
    const auto continued =
        TrainGbdt(o, task, classes, Shard(data), nullptr, *comm, {}, first.get());
    EXPECT_EQ(models::SerializeModel(*continued), models::SerializeModel(*whole))
        << models::TaskName(task);
  }
}

TEST(Gbdt, AWarmStartOfAnotherObjectiveOrShapeIsRefused) {
  const Data data = MakeData(500, 4, Task::kRegression, 2);
  GbdtOptions o;
  o.rounds = 3;
  const auto earlier = TrainAlone(o, Task::kRegression, 0, data);
  auto comm = MakeSelfCommunicator();
  o.objective = "huber";
  try {
    TrainGbdt(o, Task::kRegression, 0, Shard(data), nullptr, *comm, {}, earlier.get());
    ADD_FAILURE() << "continued a squared_error model with huber";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("objective squared_error differs"), std::string::npos)
        << e.what();
  }
  o.objective = "auto";
  const Data wider = MakeData(500, 5, Task::kRegression, 2);
  EXPECT_THROW(TrainGbdt(o, Task::kRegression, 0, Shard(wider), nullptr, *comm, {}, earlier.get()),
               Error);
}

TEST(RandomForest, LearnsAnInteractionInEveryTaskAndReportsItsOutOfBagLoss) {
  for (Task task : {Task::kRegression, Task::kBinary, Task::kMulticlass}) {
    GbdtOptions o = ForestDefaults(task, 5);
    o.rounds = 30;
    const Data train = MakeData(3000, 5, task, 1), test = MakeData(1000, 5, task, 2);
    ForestReport oob;
    const auto model = ForestAlone(o, task, task == Task::kMulticlass ? 3 : 0, train, &oob);
    EXPECT_EQ(model->kind(), "random_forest");
    const MatrixF p = Predict(*model, test.x);
    double test_loss = 0;
    if (task == Task::kRegression) {
      for (std::int64_t i = 0; i < p.rows(); ++i) {
        test_loss += std::pow(p(i, 0) - test.y[static_cast<std::size_t>(i)], 2);
      }
      test_loss /= static_cast<double>(p.rows());
      EXPECT_LT(test_loss, 0.6);
      EXPECT_EQ(oob.oob_metric, "mse");
    } else {
      EXPECT_GT(Accuracy(p, test.y), task == Task::kBinary ? 0.88 : 0.93) << TaskName(task);
      for (std::int64_t i = 0; i < p.rows(); ++i) {
        const auto y = static_cast<std::int64_t>(test.y[static_cast<std::size_t>(i)]);
        const float py = p.cols() == 1 ? (y == 1 ? p(i, 0) : 1 - p(i, 0)) : p(i, y);
        test_loss -= std::log(std::max(py, 1e-7f));
      }
      test_loss /= static_cast<double>(p.rows());
      EXPECT_EQ(oob.oob_metric, "logloss");
    }
    // Out-of-bag rows are rows the trees did not see: their loss estimates the test loss (from
    // about a third of the trees: pessimistic where the trees' variance dominates, as in
    // regression without noise, where it stays far below the target's variance of about 10).
    EXPECT_GT(oob.oob_rows, 2900);
    if (task == Task::kRegression) {
      EXPECT_GT(oob.oob_loss, 0.5 * test_loss);
      EXPECT_LT(oob.oob_loss, 0.2);
    } else {
      EXPECT_NEAR(oob.oob_loss, test_loss, 0.35 * test_loss) << TaskName(task);
    }
  }
}

TEST(RandomForest, OneTwoAndFourWorkersGrowTheSameForest) {
  GbdtOptions o = ForestDefaults(Task::kBinary, 6);
  o.rounds = 5;
  o.max_depth = 6;
  o.bin_sample_rows = 500;
  const Data all = MakeData(2000, 6, Task::kBinary, 3);
  ForestReport alone_oob;
  const std::string alone =
      models::SerializeModel(*ForestAlone(o, Task::kBinary, 0, all, &alone_oob));
  for (int world : {2, 4}) {
    std::vector<std::string> got(static_cast<std::size_t>(world));
    std::vector<ForestReport> oob(static_cast<std::size_t>(world));
    RunOnThreadRanks(world, [&](Communicator& comm) {
      const std::int64_t n = all.x.rows();
      const std::int64_t begin = n * comm.rank() / world, end = n * (comm.rank() + 1) / world;
      std::vector<std::uint64_t> ids;
      for (std::int64_t i = begin; i < end; ++i) ids.push_back(static_cast<std::uint64_t>(i));
      const std::span<const float> y(all.y.data() + begin, static_cast<std::size_t>(end - begin));
      const DataShard shard{std::as_const(all.x).view().Rows(begin, end - begin), y, ids};
      const auto r = static_cast<std::size_t>(comm.rank());
      got[r] = models::SerializeModel(*TrainForest(o, Task::kBinary, 0, shard, comm, {}, &oob[r]));
    });
    for (std::size_t r = 0; r < got.size(); ++r) {
      EXPECT_EQ(got[r], alone) << world << " workers";
      EXPECT_EQ(oob[r].oob_rows, alone_oob.oob_rows);
      EXPECT_NEAR(oob[r].oob_loss, alone_oob.oob_loss, 1e-9);
    }
  }
}

TEST(RandomForest, BoostingOnlyOptionsAreRefused) {
  const Data d = MakeData(200, 3, Task::kBinary, 9);
  GbdtOptions o = ForestDefaults(Task::kBinary, 3);
  o.early_stopping = 3;
  EXPECT_THROW(ForestAlone(o, Task::kBinary, 0, d, nullptr), Error);
  o = ForestDefaults(Task::kBinary, 3);
  o.objective = "poisson";
  EXPECT_THROW(ForestAlone(o, Task::kBinary, 0, d, nullptr), Error);
}

TEST(TreeEnsemble, AMalformedTreeIsRefusedNamingTheNode) {
  models::Tree t;
  t.AddLeaf(0.0f);
  t.feature[0] = 0;  // a split whose children do not exist
  try {
    models::TreeEnsemble m(Task::kBinary, 2, 1, {0.0f}, {t});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("tree 0 node 0"), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace escala::train
