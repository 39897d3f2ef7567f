// The early-stopping policy on its own: improvement by more than min_delta, patience, direction.
#include "train/early_stopping.h"

#include <gtest/gtest.h>

namespace escala::train {
namespace {

TEST(EarlyStopping, StopsAfterPatienceEpochsWithoutImprovementBeyondMinDelta) {
  EarlyStopping es({.patience = 2, .min_delta = 0.1, .restore_best = true}, false);
  EXPECT_TRUE(es.Observe(1, 1.0));    // the first value is the best so far
  EXPECT_TRUE(es.Observe(2, 0.8));    // lower is better, by more than 0.1
  EXPECT_FALSE(es.Observe(3, 0.75));  // better, but not by more than min_delta
  EXPECT_FALSE(es.ShouldStop());
  EXPECT_FALSE(es.Observe(4, 0.9));
  EXPECT_TRUE(es.ShouldStop());
  EXPECT_EQ(es.best_epoch(), 2);
  EXPECT_DOUBLE_EQ(es.best(), 0.8);
  EXPECT_TRUE(es.KeepsBest());
}

TEST(EarlyStopping, HigherIsBetterMetricsAndDisabledPatience) {
  EarlyStopping es({.patience = 0, .min_delta = 0, .restore_best = true}, true);
  es.Observe(1, 0.5);
  EXPECT_TRUE(es.Observe(2, 0.6));
  for (int e = 3; e < 20; ++e) EXPECT_FALSE(es.Observe(e, 0.1));
  EXPECT_FALSE(es.ShouldStop());  // patience 0: never stops
  EXPECT_FALSE(es.KeepsBest());
  EXPECT_EQ(es.epochs_without_improvement(), 17);
}

TEST(EarlyStopping, RestoredStateContinuesTheCount) {
  EarlyStopping es({.patience = 3, .min_delta = 0, .restore_best = false}, false);
  es.Restore(0.5, 4, 2);
  EXPECT_FALSE(es.Observe(7, 0.6));
  EXPECT_TRUE(es.ShouldStop());
  EXPECT_EQ(es.best_epoch(), 4);
}

}  // namespace
}  // namespace escala::train
