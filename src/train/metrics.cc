#include "escala/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala::train {

using models::Task;

double Metrics::at(std::string_view name) const {
  auto it = values.find(std::string(name));
  if (it == values.end()) {
    std::string names;
    for (const auto& [k, v] : values) names += (names.empty() ? "" : ", ") + k;
    Throw(ErrorCode::kNotFound, "metric '{}' is not available here (have: {})", name, names);
  }
  return it->second;
}

std::string Metrics::ToString() const {
  static const char* kOrder[] = {"accuracy", "precision",   "recall",  "f1",
                                 "f1_macro", "f1_weighted", "roc_auc", "pr_auc",
                                 "logloss",  "rmse",        "mae",     "r2"};
  std::string s;
  for (const char* name : kOrder) {
    auto it = values.find(name);
    if (it == values.end()) continue;
    if (!s.empty()) s += "  ";
    s += fmt::format("{} {:.4f}", name, it->second);
  }
  return s;
}

bool HigherIsBetter(std::string_view m) {
  return !(m == "logloss" || m == "rmse" || m == "mae" || m == "mse" || m == "loss");
}

std::string DefaultMetric(Task task) {
  return task == Task::kRegression ? "rmse" : "logloss";
}

std::vector<std::string> MetricNames(Task task) {
  switch (task) {
    case Task::kRegression:
      return {"rmse", "mse", "mae", "r2"};
    case Task::kBinary:
      return {"logloss", "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"};
    case Task::kMulticlass:
      return {"logloss",  "accuracy",           "precision_macro", "recall_macro",
              "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted"};
  }
  return {};
}

void CheckMetric(Task task, std::string_view metric) {
  const auto names = MetricNames(task);
  ESCALA_CHECK(std::find(names.begin(), names.end(), metric) != names.end(), kInvalidArgument,
               "unknown metric '{}' for a {} model (--metric): expected one of {}", metric,
               models::TaskName(task), fmt::join(names, ", "));
}

namespace {

// Sorted by score descending, ties grouped: returns (tp, fp) at each distinct threshold.
template <typename Fn>
void SweepThresholds(std::span<const float> scores, std::span<const float> labels, Fn&& fn) {
  // A NaN would break the strict weak ordering and never equal itself in the tie loop below.
  for (std::size_t i = 0; i < scores.size(); ++i) {
    ESCALA_CHECK(!std::isnan(scores[i]), kInvalidArgument,
                 "row {}: the score is NaN; ranking metrics need numbers", i);
  }
  std::vector<std::size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  double tp = 0, fp = 0;
  std::size_t i = 0;
  while (i < idx.size()) {
    const float s = scores[idx[i]];
    double dtp = 0, dfp = 0;
    while (i < idx.size() && scores[idx[i]] == s) {
      if (labels[idx[i]] > 0.5f) {
        dtp += 1;
      } else {
        dfp += 1;
      }
      ++i;
    }
    fn(tp, fp, tp + dtp, fp + dfp);
    tp += dtp;
    fp += dfp;
  }
}

}  // namespace

double RocAuc(std::span<const float> scores, std::span<const float> labels) {
  double pos = 0;
  for (float y : labels) pos += y > 0.5f ? 1 : 0;
  const double neg = static_cast<double>(labels.size()) - pos;
  if (pos == 0 || neg == 0) return std::nan("");
  double area = 0;
  // Trapezoids between consecutive thresholds handle ties exactly.
  SweepThresholds(scores, labels, [&](double tp0, double fp0, double tp1, double fp1) {
    area += (fp1 - fp0) * (tp0 + tp1) / 2.0;
  });
  return area / (pos * neg);
}

double AveragePrecision(std::span<const float> scores, std::span<const float> labels) {
  double pos = 0;
  for (float y : labels) pos += y > 0.5f ? 1 : 0;
  if (pos == 0) return std::nan("");
  double ap = 0;
  // Step-wise: sum over thresholds of (recall increase) * precision, as scikit-learn defines it.
  SweepThresholds(scores, labels, [&](double tp0, double, double tp1, double fp1) {
    if (tp1 > tp0) ap += (tp1 - tp0) / pos * (tp1 / (tp1 + fp1));
  });
  return ap;
}

Metrics Evaluate(Task task, ConstMatrixViewF pred, std::span<const float> labels, float threshold) {
  ESCALA_CHECK(static_cast<std::int64_t>(labels.size()) == pred.rows(), kInvalidArgument,
               "{} labels for {} predictions", labels.size(), pred.rows());
  Metrics m;
  const std::int64_t n = pred.rows();
  m.count = n;
  if (n == 0) return m;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < pred.cols(); ++j) {
      ESCALA_CHECK(std::isfinite(pred(i, j)), kInvalidArgument,
                   "row {}: the prediction is not finite ({}): an input value is out of the range "
                   "the pipeline and model can represent",
                   i, pred(i, j));
    }
  }
  if (task == Task::kRegression) {
    double se = 0, ae = 0, mean = 0;
    for (std::int64_t i = 0; i < n; ++i) mean += labels[static_cast<std::size_t>(i)];
    mean /= static_cast<double>(n);
    double tss = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double y = labels[static_cast<std::size_t>(i)];
      const double e = static_cast<double>(pred(i, 0)) - y;
      se += e * e;
      ae += std::fabs(e);
      tss += (y - mean) * (y - mean);
    }
    m.values["mse"] = se / static_cast<double>(n);
    m.values["rmse"] = std::sqrt(se / static_cast<double>(n));
    m.values["mae"] = ae / static_cast<double>(n);
    m.values["r2"] = tss > 0 ? 1.0 - se / tss : std::nan("");
    return m;
  }
  const int k = task == Task::kBinary ? 2 : static_cast<int>(pred.cols());
  m.confusion.assign(static_cast<std::size_t>(k),
                     std::vector<std::int64_t>(static_cast<std::size_t>(k), 0));
  constexpr double kEps = 1e-15;
  double logloss = 0;
  std::vector<float> scores;
  if (task == Task::kBinary) scores.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto y = static_cast<int>(labels[static_cast<std::size_t>(i)]);
    ESCALA_CHECK(y >= 0 && y < k, kInvalidArgument, "row {}: label {} outside [0, {})", i, y, k);
    int predicted;
    double p_true;
    if (task == Task::kBinary) {
      const double p = std::clamp(static_cast<double>(pred(i, 0)), kEps, 1 - kEps);
      scores[static_cast<std::size_t>(i)] = pred(i, 0);
      predicted = pred(i, 0) >= threshold ? 1 : 0;
      p_true = y == 1 ? p : 1 - p;
    } else {
      const float* r = pred.row(i);
      predicted = static_cast<int>(std::max_element(r, r + k) - r);
      p_true = std::clamp(static_cast<double>(r[y]), kEps, 1.0);
    }
    logloss -= std::log(p_true);
    ++m.confusion[static_cast<std::size_t>(y)][static_cast<std::size_t>(predicted)];
  }
  m.values["logloss"] = logloss / static_cast<double>(n);
  std::int64_t correct = 0;
  for (int c = 0; c < k; ++c)
    correct += m.confusion[static_cast<std::size_t>(c)][static_cast<std::size_t>(c)];
  m.values["accuracy"] = static_cast<double>(correct) / static_cast<double>(n);
  // Per-class precision/recall/F1 from the confusion matrix.
  std::vector<double> prec(static_cast<std::size_t>(k)), rec(prec.size()), f1(prec.size()),
      support(prec.size());
  for (int c = 0; c < k; ++c) {
    double tp =
        static_cast<double>(m.confusion[static_cast<std::size_t>(c)][static_cast<std::size_t>(c)]);
    double pred_c = 0, true_c = 0;
    for (int j = 0; j < k; ++j) {
      pred_c += static_cast<double>(
          m.confusion[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)]);
      true_c += static_cast<double>(
          m.confusion[static_cast<std::size_t>(c)][static_cast<std::size_t>(j)]);
    }
    const auto cc = static_cast<std::size_t>(c);
    // Undefined ratios count as 0, as scikit-learn's zero_division default does.
    prec[cc] = pred_c > 0 ? tp / pred_c : 0;
    rec[cc] = true_c > 0 ? tp / true_c : 0;
    f1[cc] = prec[cc] + rec[cc] > 0 ? 2 * prec[cc] * rec[cc] / (prec[cc] + rec[cc]) : 0;
    support[cc] = true_c;
  }
  if (task == Task::kBinary) {
    m.values["precision"] = prec[1];
    m.values["recall"] = rec[1];
    m.values["f1"] = f1[1];
    m.values["roc_auc"] = RocAuc(scores, labels);
    m.values["pr_auc"] = AveragePrecision(scores, labels);
  } else {
    double pm = 0, rm = 0, fm = 0, pw = 0, rw = 0, fw = 0;
    for (std::size_t c = 0; c < prec.size(); ++c) {
      pm += prec[c];
      rm += rec[c];
      fm += f1[c];
      pw += prec[c] * support[c];
      rw += rec[c] * support[c];
      fw += f1[c] * support[c];
    }
    const double kk = static_cast<double>(k);
    const double nn = static_cast<double>(n);
    m.values["precision_macro"] = pm / kk;
    m.values["recall_macro"] = rm / kk;
    m.values["f1_macro"] = fm / kk;
    m.values["precision_weighted"] = pw / nn;
    m.values["recall_weighted"] = rw / nn;
    m.values["f1_weighted"] = fw / nn;
  }
  return m;
}

namespace {

// Every rank's rows of [predictions | labels | weights] in rank order (weights only when given).
struct Gathered {
  MatrixF pred;
  std::vector<float> labels, weights;
};

Gathered GatherRows(ConstMatrixViewF pred, std::span<const float> labels,
                    std::span<const float> weights, bool weighted, Communicator& comm) {
  const std::int64_t n = pred.rows(), k = pred.cols(), w = k + 1 + (weighted ? 1 : 0);
  std::vector<float> mine(static_cast<std::size_t>(n * w));
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(mine.data() + i * k, pred.row(i), static_cast<std::size_t>(k) * sizeof(float));
  }
  std::copy(labels.begin(), labels.end(), mine.begin() + n * k);
  if (weighted) std::copy(weights.begin(), weights.end(), mine.begin() + n * (k + 1));
  const auto all = comm.AllGatherV(std::as_bytes(std::span<const float>(mine)));
  std::int64_t total = 0;
  for (const auto& part : all) total += static_cast<std::int64_t>(part.size() / sizeof(float)) / w;
  Gathered g{MatrixF(total, k), std::vector<float>(static_cast<std::size_t>(total)), {}};
  if (weighted) g.weights.resize(static_cast<std::size_t>(total));
  std::int64_t row = 0;
  for (const auto& part : all) {
    const auto* f = reinterpret_cast<const float*>(part.data());
    const std::int64_t m = static_cast<std::int64_t>(part.size() / sizeof(float)) / w;
    std::memcpy(g.pred.row(row), f, static_cast<std::size_t>(m * k) * sizeof(float));
    std::copy(f + m * k, f + m * (k + 1), g.labels.begin() + row);
    if (weighted) std::copy(f + m * (k + 1), f + m * (k + 2), g.weights.begin() + row);
    row += m;
  }
  return g;
}

// Weighted regression metrics: means over the weight sum.
void WeightedRegression(ConstMatrixViewF pred, std::span<const float> y, std::span<const float> w,
                        std::map<std::string, double>* out) {
  double sw = 0, mean = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    sw += w[i];
    mean += static_cast<double>(w[i]) * y[i];
  }
  mean /= sw;
  double se = 0, ae = 0, tss = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double e = static_cast<double>(pred(static_cast<std::int64_t>(i), 0)) - y[i];
    se += w[i] * e * e;
    ae += w[i] * std::fabs(e);
    tss += w[i] * (y[i] - mean) * (y[i] - mean);
  }
  (*out)["mse"] = se / sw;
  (*out)["rmse"] = std::sqrt(se / sw);
  (*out)["mae"] = ae / sw;
  (*out)["r2"] = tss > 0 ? 1.0 - se / tss : std::nan("");
}

// Weighted logloss and accuracy (labels already checked by Evaluate).
void WeightedClassification(Task task, ConstMatrixViewF pred, std::span<const float> y,
                            std::span<const float> w, float threshold,
                            std::map<std::string, double>* out) {
  constexpr double kEps = 1e-15;
  double sw = 0, logloss = 0, correct = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const auto r = static_cast<std::int64_t>(i);
    const auto label = static_cast<std::int64_t>(y[i]);
    std::int64_t predicted = 0;
    double p_true = 0;
    if (task == Task::kBinary) {
      const double p = std::clamp(static_cast<double>(pred(r, 0)), kEps, 1 - kEps);
      predicted = pred(r, 0) >= threshold ? 1 : 0;
      p_true = label == 1 ? p : 1 - p;
    } else {
      const float* z = pred.row(r);
      predicted = std::max_element(z, z + pred.cols()) - z;
      p_true = std::clamp(static_cast<double>(z[label]), kEps, 1.0);
    }
    sw += w[i];
    logloss -= w[i] * std::log(p_true);
    correct += predicted == label ? w[i] : 0.0;
  }
  (*out)["logloss"] = logloss / sw;
  (*out)["accuracy"] = correct / sw;
}

}  // namespace

Metrics Evaluate(Task task, ConstMatrixViewF pred, std::span<const float> labels,
                 std::span<const float> weights, float threshold) {
  Metrics m = Evaluate(task, pred, labels, threshold);
  if (weights.empty() || m.count == 0) return m;
  ESCALA_CHECK(weights.size() == labels.size(), kInvalidArgument, "{} weights for {} labels",
               weights.size(), labels.size());
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (!(sum > 0)) return m;
  if (task == Task::kRegression) {
    WeightedRegression(pred, labels, weights, &m.values);
  } else {
    WeightedClassification(task, pred, labels, weights, threshold, &m.values);
  }
  return m;
}

Metrics EvaluateDistributed(Task task, ConstMatrixViewF pred, std::span<const float> labels,
                            std::span<const float> weights, Communicator& comm, float threshold) {
  const bool weighted = comm.AllReduceScalar<int>(weights.empty() ? 0 : 1, ReduceOp::kMax) > 0;
  if (!weighted) return EvaluateDistributed(task, pred, labels, comm, threshold);
  ESCALA_CHECK(weights.size() == labels.size(), kInvalidArgument, "{} weights for {} labels",
               weights.size(), labels.size());
  if (comm.size() == 1) return Evaluate(task, pred, labels, weights, threshold);
  const Gathered g = GatherRows(pred, labels, weights, true, comm);
  return Evaluate(task, g.pred.view(), g.labels, g.weights, threshold);
}

Metrics EvaluateDistributed(Task task, ConstMatrixViewF pred, std::span<const float> labels,
                            Communicator& comm, float threshold) {
  if (comm.size() == 1) return Evaluate(task, pred, labels, threshold);
  const Gathered g = GatherRows(pred, labels, {}, false, comm);
  return Evaluate(task, g.pred.view(), g.labels, threshold);
}

}  // namespace escala::train
