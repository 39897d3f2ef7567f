#include "escala/train/metrics.h"

#include <cmath>

#include <gtest/gtest.h>

#include "escala/core/thread_communicator.h"

namespace escala::train {
namespace {

using models::Task;

TEST(Metrics, BinaryAgainstHandComputedValues) {
  // scores and labels chosen so every quantity is easy to verify by hand.
  MatrixF p(6, 1);
  const float s[] = {0.9f, 0.8f, 0.7f, 0.4f, 0.3f, 0.2f};
  for (int i = 0; i < 6; ++i) p(i, 0) = s[i];
  const std::vector<float> y = {1, 1, 0, 1, 0, 0};
  const Metrics m = Evaluate(Task::kBinary, p.view(), y);
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 4.0 / 6);  // predicted 1,1,1,0,0,0
  EXPECT_DOUBLE_EQ(m.at("precision"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.at("recall"), 2.0 / 3);
  EXPECT_NEAR(m.at("roc_auc"), 8.0 / 9, 1e-12);  // 8 of 9 positive-negative pairs ordered
  EXPECT_NEAR(m.at("pr_auc"), (1.0 + 1.0 + 0.75) / 3, 1e-12);
  const double ll = -(std::log(0.9) + std::log(0.8) + std::log(0.3) + std::log(0.4) +
                      std::log(0.7) + std::log(0.8)) /
                    6;
  EXPECT_NEAR(m.at("logloss"), ll, 1e-6);
  EXPECT_EQ(m.confusion[1][1], 2);
  EXPECT_EQ(m.confusion[0][1], 1);
  EXPECT_THROW(m.at("rmse"), Error);
}

TEST(Metrics, TiedScoresGiveHalfCredit) {
  MatrixF p(2, 1, 0.5f);
  const std::vector<float> y = {1, 0};
  EXPECT_DOUBLE_EQ(Evaluate(Task::kBinary, p.view(), y).at("roc_auc"), 0.5);
}

TEST(Metrics, MulticlassMacroAndWeighted) {
  MatrixF p(4, 3, 0.0f);
  // predictions: 0, 1, 1, 2 ; truth: 0, 1, 2, 2
  p(0, 0) = 1;
  p(1, 1) = 1;
  p(2, 1) = 1;
  p(3, 2) = 1;
  const std::vector<float> y = {0, 1, 2, 2};
  const Metrics m = Evaluate(Task::kMulticlass, p.view(), y);
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.75);
  // per class f1: 1, 2/3, 2/3 -> macro 7/9; weighted (1*1 + 1*2/3 + 2*2/3)/4 = 0.75
  EXPECT_NEAR(m.at("f1_macro"), 7.0 / 9, 1e-12);
  EXPECT_NEAR(m.at("f1_weighted"), 0.75, 1e-12);
}

TEST(Metrics, Regression) {
  MatrixF p(3, 1);
  p(0, 0) = 1;
  p(1, 0) = 2;
  p(2, 0) = 4;
  const std::vector<float> y = {1, 3, 3};
  const Metrics m = Evaluate(Task::kRegression, p.view(), y);
  EXPECT_NEAR(m.at("rmse"), std::sqrt(2.0 / 3), 1e-9);
  EXPECT_NEAR(m.at("mae"), 2.0 / 3, 1e-9);
  const double tss = (1 - 7.0 / 3) * (1 - 7.0 / 3) + 2 * (3 - 7.0 / 3) * (3 - 7.0 / 3);
  EXPECT_NEAR(m.at("r2"), 1 - 2.0 / tss, 1e-9);
  EXPECT_TRUE(HigherIsBetter("r2"));
  EXPECT_FALSE(HigherIsBetter("rmse"));
}

TEST(Metrics, DistributedEqualsGathered) {
  const int n = 101;
  MatrixF all(n, 1);
  std::vector<float> y(n);
  for (int i = 0; i < n; ++i) {
    all(i, 0) = static_cast<float>((i * 37) % 101) / 101.0f;
    y[static_cast<std::size_t>(i)] = static_cast<float>((i * 13) % 3 == 0);
  }
  const Metrics whole = Evaluate(Task::kBinary, all.view(), y);
  RunOnThreadRanks(3, [&](Communicator& comm) {
    const int b = n * comm.rank() / 3, e = n * (comm.rank() + 1) / 3;
    const Metrics m =
        EvaluateDistributed(Task::kBinary, all.view().Rows(b, e - b),
                            std::span<const float>(y).subspan(static_cast<std::size_t>(b),
                                                              static_cast<std::size_t>(e - b)),
                            comm);
    for (const auto& [k, v] : whole.values) EXPECT_NEAR(m.at(k), v, 1e-12) << k;
  });
}

}  // namespace
}  // namespace escala::train
