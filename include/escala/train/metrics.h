// Evaluation metrics for regression and classification.
//
// Evaluate() computes every metric that applies to the task from predictions (the model's
// Predict() output: values, P(y=1), or class probabilities) and labels. In a distributed job
// EvaluateDistributed() gathers predictions and labels from all ranks first, so that rank-order
// statistics (ROC AUC, PR AUC) are exact rather than averaged per shard.
//
// Metric names (used by --metric, early stopping, model selection and the bundle):
//   regression:     rmse, mae, r2, mse
//   binary:         accuracy, precision, recall, f1, roc_auc, pr_auc, logloss
//   multiclass:     accuracy, precision_macro, recall_macro, f1_macro, precision_weighted,
//                   recall_weighted, f1_weighted, logloss
#ifndef ESCALA_TRAIN_METRICS_H_
#define ESCALA_TRAIN_METRICS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/core/matrix.h"
#include "escala/models/model.h"

namespace escala::train {

struct Metrics {
  std::map<std::string, double> values;
  // Classification: counts[true][predicted], num_classes x num_classes.
  std::vector<std::vector<std::int64_t>> confusion;
  std::int64_t count = 0;

  double at(std::string_view name) const;  // throws kNotFound naming the available metrics
  // "accuracy 0.8712  f1 0.8655  logloss 0.3012" in a stable order.
  std::string ToString() const;
};

Metrics Evaluate(models::Task task, ConstMatrixViewF predictions, std::span<const float> labels,
                 float threshold = 0.5f);

Metrics EvaluateDistributed(models::Task task, ConstMatrixViewF predictions,
                            std::span<const float> labels, Communicator& comm,
                            float threshold = 0.5f);

// With per-row weights (empty: unweighted, as above): rmse, mse, mae, r2, logloss and accuracy
// are weighted (means over the weight sum, as scikit-learn's with sample_weight); the counts
// behind precision, recall, f1 and the AUCs stay unweighted. A weight sum of 0 gives the
// unweighted metrics. The distributed form is collective; ranks without rows pass no weights.
Metrics Evaluate(models::Task task, ConstMatrixViewF predictions, std::span<const float> labels,
                 std::span<const float> weights, float threshold = 0.5f);
Metrics EvaluateDistributed(models::Task task, ConstMatrixViewF predictions,
                            std::span<const float> labels, std::span<const float> weights,
                            Communicator& comm, float threshold = 0.5f);

// Whether larger values of the metric are better (accuracy, auc, f1, r2) or smaller (loss, error).
bool HigherIsBetter(std::string_view metric);
// The default metric monitored for early stopping and selection: logloss for classification,
// rmse for regression.
std::string DefaultMetric(models::Task task);
// The metrics Evaluate() reports for a task, in a fixed order.
std::vector<std::string> MetricNames(models::Task task);
// Throws kInvalidArgument naming `metric` and the task's metrics when Evaluate() does not report
// it for the task.
void CheckMetric(models::Task task, std::string_view metric);

double RocAuc(std::span<const float> scores, std::span<const float> labels);
double AveragePrecision(std::span<const float> scores, std::span<const float> labels);

}  // namespace escala::train

#endif  // ESCALA_TRAIN_METRICS_H_
