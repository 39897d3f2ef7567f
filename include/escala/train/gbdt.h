// Histogram gradient boosting of decision trees, data-parallel over a Communicator.
//
// Each feature is quantised into at most max_bin bins whose edges are exact quantiles of a row
// sample chosen by global row identity (LightGBM's 200,000 rows by default), gathered on every
// rank: every rank, whatever the number of workers, gets the same edges. Every round computes each
// row's gradient and hessian of the objective, rounds them to 64-bit fixed point (a scale chosen
// from the round's largest value over all ranks, so no sum can overflow), and grows one tree per
// output depth-wise (or leaf-wise, max_leaves): per level, each rank builds the histograms
// (gradient and hessian sums per bin) of the nodes' rows it holds — the smaller child of each split
// only, the larger is its parent's histogram minus the smaller's — and one all-reduce sums them
// over ranks. Integer sums do not depend on their order, so 1, 2 or 4 workers (and any thread
// count) grow exactly the same trees. A split's gain is XGBoost's: G_L^2/(H_L+lambda) +
// G_R^2/(H_R+lambda) - G^2/(H+lambda) (G soft-thresholded by alpha), made when it exceeds gamma
// with both children's hessian at least min_child_weight; rows with a missing value go the way that
// gains more (the learned default direction). A leaf's value is -learning_rate G/(H+lambda).
//
// Each tree may see a sample of the rows (subsample, by a hash of the row's global identity and
// the round, so the same rows for any number of workers) and of the features (colsample_bytree,
// and of those colsample_bynode per node, by the seed). A child must also hold min_data_in_leaf
// rows, estimated from its hessian share of the node's exact row count (as LightGBM does).
//
// Objectives: squared error, absolute error, Huber (huber_delta) and Poisson (log link: the model
// outputs exp(score)) for regression; binary logistic; multiclass softmax (one tree per class per
// round). The base score is the label mean (its log for Poisson, its log-odds, the class
// log-priors), for absolute error the label median. Absolute error (XGBoost's reg:absoluteerror,
// LightGBM's l1) grows each tree on the gradient sign(score - label) with hessian 1, then sets
// each leaf to learning_rate times the median of its rows' residuals (label - score): medians
// exact over every rank, found by a distributed binary search on integer sums, so 1, 2 or 4
// workers still grow the same trees (train/tree_median.h defines the median: for an even count
// the mean of the two middle values; with sample weights the midpoint of the lower and upper
// weighted medians, where XGBoost takes the lower). lambda and alpha shape its splits only. With
// validation rows and early_stopping > 0, training stops after that many rounds without the
// validation loss improving by min_delta and keeps the best round's trees.
//
// Every node records its cover (hessian sum) and every split its gain: feature importance and
// TreeSHAP contributions come from them (models::TreeEnsemble).
//
// Thread-safety: TrainGbdt is a collective: every rank calls it with the same options.
#ifndef ESCALA_TRAIN_GBDT_H_
#define ESCALA_TRAIN_GBDT_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/models/tree_ensemble.h"
#include "escala/train/metrics.h"
#include "escala/train/trainer.h"

namespace escala::train {

struct GbdtOptions {
  int rounds = 100;   // boosting rounds (trees per output)
  int max_depth = 6;  // in [1, 30]
  // 0: depth-wise growth (every node of a level that gains enough is split). Otherwise leaf-wise:
  // the leaf whose split gains most is split next, up to this many leaves (>= 2) and max_depth.
  int max_leaves = 0;
  float learning_rate = 0.3f;  // shrinkage, in (0, 1]
  // Value bins per feature, in [2, 65534] (a missing-value bin comes in addition). Up to 255 (the
  // default, LightGBM's), a row's bin of a feature takes one byte, above it two.
  int max_bin = 255;
  double lambda = 1.0;                    // L2 penalty on leaf values
  double alpha = 0.0;                     // L1 penalty on leaf values
  double gamma = 0.0;                     // smallest gain that makes a split
  double min_child_weight = 1.0;          // smallest hessian sum in a child
  std::int64_t min_data_in_leaf = 0;      // smallest row count in a child
  std::int64_t bin_sample_rows = 200000;  // rows whose values place the bin edges
  // "auto" (the task's: squared_error, logistic or softmax), "squared_error", "absolute_error",
  // "huber", "poisson" (regression), "logistic" (binary), "softmax" (multiclass).
  std::string objective = "auto";
  double huber_delta = 1.0;       // huber: residuals beyond it count linearly (label units)
  double subsample = 1.0;         // fraction of rows each tree sees, in (0, 1]
  double colsample_bytree = 1.0;  // fraction of features each tree sees, in (0, 1]
  double colsample_bynode = 1.0;  // fraction of the tree's features each node sees, in (0, 1]
  int early_stopping = 0;         // rounds without improvement before stopping (0: off)
  double min_delta = 0.0;         // smallest validation-loss improvement that counts
  std::uint64_t seed = 0;         // row and feature sampling
  // Empty, or one per feature: 1 the prediction may only increase with the feature, -1 only
  // decrease, 0 free (XGBoost's monotone_constraints: a split on a constrained feature whose
  // children's weights go the wrong way is not made, and its children's weights are bounded by
  // the middle of the two, so the whole tree keeps the direction).
  std::vector<int> monotone;
  // Empty, or one per feature: n > 0 marks a category code (0 .. n-1, ordinal-encoded; n <=
  // max_bin) split natively by category sets, 0 a number. A node with at most max_cat_to_onehot
  // categories tries each against the rest; with more, the best prefix of its categories sorted
  // by gradient over hessian (LightGBM's and XGBoost's partition search). A value that is not a
  // known code goes right.
  std::vector<std::int64_t> categorical;
  int max_cat_to_onehot = 4;
};

// Throws kInvalidArgument naming the first option out of range.
void Validate(const GbdtOptions& o);

// The objective an option string and task resolve to ("squared_error", "absolute_error",
// "huber", "poisson", "logistic", "softmax"); kInvalidArgument naming `objective` when they do not
// fit together.
std::string ResolveObjective(const std::string& objective, models::Task task);

// The validation metric the objective reports: "mse", "mae" (absolute_error), "huber",
// "poisson_nloglik" or "logloss".
std::string ObjectiveMetric(const std::string& objective);

// Called on every rank after each round: the round (1-based) and the validation loss (mean per
// row of the objective's metric; NaN without validation rows).
using GbdtProgressFn = std::function<void(int round, double valid_loss)>;

// Trains on this rank's shard (labels as GradientModel::AccumulateGradient takes them: values,
// 0/1, or class indices; features may hold NaN for missing values). `valid` may be null.
// num_classes: >= 2 for multiclass, ignored otherwise. Errors: kInvalidArgument for options,
// labels or shapes (naming the option or row; the row by its global identity), or when no
// feature has two distinct values; kAborted when a gradient is not finite. With early stopping,
// the model holds the best round's trees.
//
// `init` (a warm start, XGBoost's xgb_model): boosting continues from an earlier ensemble of the
// same task, outputs, features and objective: its base score and trees come first, the rows'
// scores start from its margins, and options.rounds more rounds are added (early stopping counts
// the new rounds only). kFailedPrecondition naming what differs.
std::unique_ptr<models::TreeEnsemble> TrainGbdt(const GbdtOptions& options, models::Task task,
                                                int num_classes, const DataShard& train,
                                                const DataShard* valid, Communicator& comm,
                                                const GbdtProgressFn& progress = {},
                                                const models::TreeEnsemble* init = nullptr);

// ---- random forests ------------------------------------------------------------------------
//
// The same grower fits each tree to the labels (squared error: every split is the best variance
// reduction; on 0/1 class indicators that is the Gini criterion) on a bootstrap sample: row i
// enters tree t Poisson(subsample) times, drawn from a hash of (seed, t, its global id), so the
// same rows for any number of workers. Leaves hold the mean label; the forest averages its
// trees (regression: the value; binary and multiclass: the class probabilities, one tree per
// class per round on the same sample). learning_rate and early stopping do not apply. Rows a
// tree did not draw score its out-of-bag prediction.

// The forest's defaults for options a caller left at GbdtOptions' (sklearn's and XGBoost's
// forests): full trees (max_depth 30, min_data_in_leaf 1, min_child_weight 0, lambda 0), a
// bootstrap sample as large as the data, and per node sqrt(d) of the d features for
// classification, all of them for regression.
GbdtOptions ForestDefaults(models::Task task, std::int64_t num_features);

struct ForestReport {
  std::string oob_metric;  // "mse" or "logloss"
  double oob_loss = std::numeric_limits<double>::quiet_NaN();
  std::int64_t oob_rows = 0;  // rows left out of at least one tree, all ranks
};

// Trains options.rounds trees (per output) as TrainGbdt does, a collective on every rank.
// `progress` gets each round and NaN. Errors as TrainGbdt's; kInvalidArgument naming
// early_stopping when it is set.
std::unique_ptr<models::TreeEnsemble> TrainForest(const GbdtOptions& options, models::Task task,
                                                  int num_classes, const DataShard& train,
                                                  Communicator& comm,
                                                  const GbdtProgressFn& progress = {},
                                                  ForestReport* report = nullptr);

}  // namespace escala::train

#endif  // ESCALA_TRAIN_GBDT_H_
