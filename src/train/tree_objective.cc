#include "train/tree_objective.h"

#include <algorithm>
#include <cmath>

#include "escala/core/error.h"
#include "escala/core/parallel.h"
#include "escala/models/model.h"
#include "escala/train/gbdt.h"
#include "train/tree_median.h"

namespace escala::train {

namespace trees {

namespace {

// XGBoost's max_delta_step for count:poisson: the hessian exp(z + 0.7) keeps early steps small.
constexpr double kPoissonDeltaStep = 0.7;

double Softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

void SoftmaxRow(const float* z, std::int64_t k, float label, double* g, double* h) {
  const double m = *std::max_element(z, z + k);
  double sum = 0;
  for (std::int64_t c = 0; c < k; ++c) {
    g[c] = std::exp(z[c] - m);
    sum += g[c];
  }
  for (std::int64_t c = 0; c < k; ++c) {
    const double p = g[c] / sum;
    g[c] = p - (static_cast<std::int64_t>(label) == c ? 1.0 : 0.0);
    h[c] = std::max(2.0 * p * (1.0 - p), 1e-16);
  }
}

}  // namespace

Objective ParseObjective(const std::string& name) {
  if (name == "absolute_error") return Objective::kAbsoluteError;
  if (name == "huber") return Objective::kHuber;
  if (name == "poisson") return Objective::kPoisson;
  if (name == "logistic") return Objective::kLogistic;
  if (name == "softmax") return Objective::kSoftmax;
  return Objective::kSquaredError;
}

void ObjectiveFn::Gradients(const MatrixF& f, std::span<const float> y, std::vector<double>* g,
                            std::vector<double>* h) const {
  const std::int64_t n = f.rows(), k = f.cols();
  g->resize(static_cast<std::size_t>(n * k));
  h->resize(static_cast<std::size_t>(n * k));
  ParallelFor(static_cast<std::size_t>(n), 1 << 13, [&](std::size_t begin, std::size_t end) {
    for (auto i = static_cast<std::int64_t>(begin); i < static_cast<std::int64_t>(end); ++i) {
      RowGradients(f.row(i), k, y[static_cast<std::size_t>(i)], g->data() + i * k,
                   h->data() + i * k);
    }
  });
}

void ObjectiveFn::RowGradients(const float* z, std::int64_t k, float y, double* gi,
                               double* hi) const {
  const double label = y;
  switch (kind) {
    case Objective::kSquaredError:
      *gi = z[0] - label;
      *hi = 1.0;
      break;
    case Objective::kAbsoluteError:  // XGBoost's: sign(z - y), hessian 1; leaves refit to medians
      *gi = z[0] > label ? 1.0 : (z[0] < label ? -1.0 : 0.0);
      *hi = 1.0;
      break;
    case Objective::kHuber:
      *gi = std::clamp(z[0] - label, -huber_delta, huber_delta);
      *hi = 1.0;
      break;
    case Objective::kPoisson:
      *gi = std::exp(static_cast<double>(z[0])) - label;
      *hi = std::exp(z[0] + kPoissonDeltaStep);
      break;
    case Objective::kLogistic: {
      const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(z[0])));
      *gi = p - label;
      *hi = std::max(p * (1.0 - p), 1e-16);
      break;
    }
    case Objective::kSoftmax:
      SoftmaxRow(z, k, y, gi, hi);
      break;
  }
}

double ObjectiveFn::RowLoss(const float* z, std::int64_t k, float y) const {
  const double r = static_cast<double>(z[0]) - y;
  switch (kind) {
    case Objective::kSquaredError:
      return r * r;
    case Objective::kAbsoluteError:
      return std::fabs(r);
    case Objective::kHuber:
      return std::fabs(r) <= huber_delta ? r * r / 2
                                         : huber_delta * (std::fabs(r) - huber_delta / 2);
    case Objective::kPoisson:
      return std::exp(static_cast<double>(z[0])) - y * static_cast<double>(z[0]) +
             std::lgamma(y + 1.0);
    case Objective::kLogistic:
      return Softplus(z[0]) - y * static_cast<double>(z[0]);
    case Objective::kSoftmax: {
      const double m = *std::max_element(z, z + k);
      double sum = 0;
      for (std::int64_t c = 0; c < k; ++c) sum += std::exp(z[c] - m);
      return m + std::log(sum) - z[static_cast<std::int64_t>(y)];
    }
  }
  return 0.0;
}

void ObjectiveFn::CheckLabels(std::span<const float> y, std::int64_t k,
                              std::span<const std::uint64_t> ids) const {
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float v = y[i];
    bool ok = std::isfinite(v);
    const char* domain = "a finite number";
    if (kind == Objective::kPoisson) {
      ok = ok && v >= 0;
      domain = "a count or rate >= 0 (poisson)";
    } else if (kind == Objective::kLogistic) {
      ok = ok && (v == 0 || v == 1);
      domain = "0 or 1 (binary)";
    } else if (kind == Objective::kSoftmax) {
      ok = ok && v >= 0 && v < static_cast<float>(k) && v == std::floor(v);
      domain = "a class index (multiclass)";
    }
    ESCALA_CHECK(ok, kInvalidArgument, "row {}: label {} is not {}", ids[i], v, domain);
  }
}

std::vector<float> ObjectiveFn::BaseScore(std::int64_t k, std::span<const float> y,
                                          std::span<const float> w, Communicator& comm) const {
  if (kind == Objective::kAbsoluteError) {
    const std::vector<std::int64_t> fixed = FixedWeights(w, y.size(), comm);
    const std::size_t offsets[2] = {0, y.size()};
    return {static_cast<float>(GlobalMedians(y, offsets, fixed, comm)[0])};
  }
  std::vector<double> sums(static_cast<std::size_t>(k + 1), 0.0);
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double weight = w.empty() ? 1.0 : w[i];
    if (kind == Objective::kSoftmax) {
      sums[static_cast<std::size_t>(y[i])] += weight;
    } else {
      sums[0] += weight * y[i];
    }
    sums[static_cast<std::size_t>(k)] += weight;
  }
  comm.AllReduce(std::span<double>(sums), ReduceOp::kSum);
  const double n = sums[static_cast<std::size_t>(k)] > 0 ? sums[static_cast<std::size_t>(k)] : 1.0;
  std::vector<float> base(static_cast<std::size_t>(k));
  const double mean = sums[0] / n;
  if (kind == Objective::kPoisson) {
    ESCALA_CHECK(mean > 0, kInvalidArgument,
                 "objective poisson: every label is 0; the rate's log has no finite fit");
    base[0] = static_cast<float>(std::log(mean));
  } else if (kind == Objective::kLogistic) {
    const double p = std::clamp(mean, 1e-6, 1 - 1e-6);
    base[0] = static_cast<float>(std::log(p / (1 - p)));
  } else if (kind == Objective::kSoftmax) {
    for (std::int64_t c = 0; c < k; ++c) {
      const double p = std::clamp(sums[static_cast<std::size_t>(c)] / n, 1e-6, 1 - 1e-6);
      base[static_cast<std::size_t>(c)] = static_cast<float>(std::log(p));
    }
  } else {
    base[0] = static_cast<float>(mean);
  }
  return base;
}

}  // namespace trees

std::string ResolveObjective(const std::string& objective, models::Task task) {
  const std::string natural = task == models::Task::kBinary       ? "logistic"
                              : task == models::Task::kMulticlass ? "softmax"
                                                                  : "squared_error";
  if (objective == "auto" || objective == natural) return natural;
  const bool known = objective == "squared_error" || objective == "absolute_error" ||
                     objective == "huber" || objective == "poisson" || objective == "logistic" ||
                     objective == "softmax";
  ESCALA_CHECK(known, kInvalidArgument,
               "objective must be auto, squared_error, absolute_error, huber, poisson, logistic or "
               "softmax; got '{}'",
               objective);
  ESCALA_CHECK(
      task == models::Task::kRegression && objective != "logistic" && objective != "softmax",
      kInvalidArgument, "objective {} does not fit a {} task (its objective is {})", objective,
      models::TaskName(task), natural);
  return objective;
}

std::string ObjectiveMetric(const std::string& objective) {
  if (objective == "absolute_error") return "mae";
  if (objective == "huber") return "huber";
  if (objective == "poisson") return "poisson_nloglik";
  if (objective == "squared_error") return "mse";
  return "logloss";
}

}  // namespace escala::train
