#include "escala/train/selection.h"

#include <gtest/gtest.h>

#include "escala/core/communicator.h"
#include "escala/core/error.h"
#include "test_util/synthetic.h"

namespace escala::train {
namespace {

TEST(Selection, ParsesGridsAndAppliesCandidates) {
  const auto space = ParseSearchSpace("lr=1e-3,1e-2; l2=0,1e-4,1e-2; hidden=32,64x64");
  EXPECT_EQ(GridCandidates(space).size(), 12u);
  EXPECT_EQ(RandomCandidates(space, 5, 1).size(), 5u);
  EXPECT_EQ(RandomCandidates(space, 100, 1).size(), 12u);
  models::ModelSpec spec;
  TrainOptions o;
  ApplyCandidate({{"lr", "0.5"}, {"hidden", "64x32"}, {"batch_size", "128"}}, &spec, &o);
  EXPECT_FLOAT_EQ(o.optimizer.lr, 0.5f);
  EXPECT_EQ(spec.hidden, (std::vector<std::int64_t>{64, 32}));
  EXPECT_EQ(o.batch_size, 128);
  EXPECT_THROW(ParseSearchSpace("depth=3"), Error);
  EXPECT_THROW(ParseSearchSpace("lr"), Error);
  EXPECT_THROW(ApplyCandidate({{"lr", "fast"}}, &spec, &o), Error);
}

TEST(Selection, StratifiedFoldsSpreadEveryClassEvenly) {
  std::vector<std::uint64_t> ids(90);
  std::vector<float> y(90);
  for (int i = 0; i < 90; ++i) {
    ids[static_cast<std::size_t>(i)] = static_cast<std::uint64_t>(i);
    y[static_cast<std::size_t>(i)] = i < 60 ? 0.0f : 1.0f;  // 60 / 30
  }
  const auto folds = AssignFolds(ids, y, 3, true, 7, 1);
  for (int f = 0; f < 3; ++f) {
    int c0 = 0, c1 = 0;
    for (int i = 0; i < 90; ++i) {
      if (folds[static_cast<std::size_t>(i)] != f) continue;
      (y[static_cast<std::size_t>(i)] == 0 ? c0 : c1)++;
    }
    EXPECT_EQ(c0, 20) << f;
    EXPECT_EQ(c1, 10) << f;
  }
}

TEST(Selection, CrossValidationPrefersTheSensibleRegularisation) {
  const auto data = testing::MakeSynthetic(1200, 6, 2, 3);
  models::ModelSpec spec;
  spec.kind = "logistic";
  spec.num_features = 6;
  TrainOptions o;
  o.optimizer.name = "lbfgs";
  o.progress = false;
  SelectionOptions so;
  so.folds = 3;
  auto comm = MakeSelfCommunicator();
  const auto r = CrossValidate(spec, o, GridCandidates(ParseSearchSpace("l2=10,0.0001")),
                               {data.x.view(), data.y, {}}, so, *comm);
  ASSERT_EQ(r.candidates.size(), 2u);
  EXPECT_EQ(r.metric, "logloss");
  EXPECT_EQ(r.candidates[static_cast<std::size_t>(r.best)].params.at("l2"), "0.0001");
  EXPECT_EQ(r.candidates[0].fold_scores.size(), 3u);
}

}  // namespace
}  // namespace escala::train
