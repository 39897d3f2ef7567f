#include "escala/models/model.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "escala/core/error.h"

namespace escala::models {

std::string_view TaskName(Task task) {
  switch (task) {
    case Task::kRegression:
      return "regression";
    case Task::kBinary:
      return "binary";
    case Task::kMulticlass:
      return "multiclass";
  }
  return "?";
}

std::string_view ActivationName(Activation a) {
  switch (a) {
    case Activation::kIdentity:
      return "identity";
    case Activation::kReLU:
      return "relu";
    case Activation::kTanh:
      return "tanh";
    case Activation::kSigmoid:
      return "sigmoid";
    case Activation::kGELU:
      return "gelu";
  }
  return "?";
}

Activation ParseActivation(std::string_view name) {
  std::string s(name);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "relu") return Activation::kReLU;
  if (s == "tanh") return Activation::kTanh;
  if (s == "sigmoid") return Activation::kSigmoid;
  if (s == "gelu") return Activation::kGELU;
  if (s == "identity" || s == "linear") return Activation::kIdentity;
  Throw(ErrorCode::kInvalidArgument,
        "unknown activation '{}' (expected relu, tanh, sigmoid, gelu or identity)", name);
}

int Model::num_classes() const {
  switch (task()) {
    case Task::kRegression:
      return 0;
    case Task::kBinary:
      return 2;
    case Task::kMulticlass:
      return static_cast<int>(num_outputs());
  }
  return 0;
}

void Model::Predict(ConstMatrixViewF x, MatrixViewF out, Workspace& ws) const {
  Logits(x, out, ws);
  if (!OutputsArePredictions()) ApplyLink(task(), out);
  if (task() == Task::kRegression && (target_shift_ != 0.0 || target_scale_ != 1.0)) {
    for (std::int64_t i = 0; i < out.rows(); ++i) {
      out(i, 0) = static_cast<float>(out(i, 0) * target_scale_ + target_shift_);
    }
  }
}

void Model::SetTargetScaling(double shift, double scale) {
  ESCALA_CHECK(std::isfinite(shift) && std::isfinite(scale) && scale > 0, kInvalidArgument,
               "target scaling needs a finite shift and a positive scale, got {} and {}", shift,
               scale);
  ESCALA_CHECK(task() == Task::kRegression || (shift == 0.0 && scale == 1.0), kInvalidArgument,
               "only regression models scale their target");
  target_shift_ = shift;
  target_scale_ = scale;
}

namespace {

inline float Sigmoid(float z) {
  // Stable for large |z|: never evaluates exp of a large positive number.
  if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

void CheckLabels(Task task, std::int64_t k, std::span<const float> labels, std::int64_t rows,
                 std::int64_t row_offset) {
  ESCALA_CHECK(static_cast<std::int64_t>(labels.size()) == rows, kInvalidArgument,
               "{} labels for {} rows", labels.size(), rows);
  for (std::int64_t i = 0; i < rows; ++i) {
    const float y = labels[static_cast<std::size_t>(i)];
    switch (task) {
      case Task::kRegression:
        ESCALA_CHECK(std::isfinite(y), kInvalidArgument, "row {}: label {} is not finite",
                     i + row_offset, y);
        break;
      case Task::kBinary:
        ESCALA_CHECK(y == 0.0f || y == 1.0f, kInvalidArgument,
                     "row {}: binary label must be 0 or 1, got {}", i + row_offset, y);
        break;
      case Task::kMulticlass:
        ESCALA_CHECK(y >= 0 && y < static_cast<float>(k) && y == std::floor(y), kInvalidArgument,
                     "row {}: class label must be an integer in [0, {}), got {}", i + row_offset, k,
                     y);
        break;
    }
  }
}

}  // namespace

void ApplyLink(Task task, MatrixViewF logits) {
  const std::int64_t n = logits.rows();
  const std::int64_t k = logits.cols();
  switch (task) {
    case Task::kRegression:
      return;
    case Task::kBinary:
      for (std::int64_t i = 0; i < n; ++i) {
        float* r = logits.row(i);
        for (std::int64_t j = 0; j < k; ++j) r[j] = Sigmoid(r[j]);
      }
      return;
    case Task::kMulticlass:
      for (std::int64_t i = 0; i < n; ++i) {
        float* r = logits.row(i);
        const float m = *std::max_element(r, r + k);
        float sum = 0;
        for (std::int64_t j = 0; j < k; ++j) {
          r[j] = std::exp(r[j] - m);
          sum += r[j];
        }
        const float inv = 1.0f / sum;
        for (std::int64_t j = 0; j < k; ++j) r[j] *= inv;
      }
      return;
  }
}

namespace {

// Row by row, each row's loss and gradient times its weight: the unweighted loop stays as it is.
double WeightedLossAndLogitGradient(Task task, ConstMatrixViewF logits,
                                    std::span<const float> labels, MatrixViewF dlogits,
                                    std::int64_t row_offset, std::span<const float> weights) {
  const std::int64_t n = logits.rows();
  ESCALA_CHECK(static_cast<std::int64_t>(weights.size()) == n, kInvalidArgument,
               "{} weights for {} rows", weights.size(), n);
  double loss = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto at = static_cast<std::size_t>(i);
    MatrixViewF g = dlogits.Rows(i, 1);
    const double l =
        LossAndLogitGradient(task, logits.Rows(i, 1), labels.subspan(at, 1), g, row_offset + i);
    const float w = weights[at];
    for (std::int64_t j = 0; j < g.cols(); ++j) g(0, j) *= w;
    loss += w * l;
  }
  return loss;
}

}  // namespace

double LossAndLogitGradient(Task task, ConstMatrixViewF logits, std::span<const float> labels,
                            MatrixViewF dlogits, std::int64_t row_offset,
                            std::span<const float> weights) {
  if (!weights.empty()) {
    return WeightedLossAndLogitGradient(task, logits, labels, dlogits, row_offset, weights);
  }
  const std::int64_t n = logits.rows();
  const std::int64_t k = logits.cols();
  ESCALA_CHECK(static_cast<std::int64_t>(labels.size()) == n, kInvalidArgument,
               "{} labels for {} rows", labels.size(), n);
  // Regression and binary labels are checked in the loop that reads them (a bad one fails the
  // call after it, with its row); class labels index the logits, so they are checked first.
  bool bad = false;
  double loss = 0;
  switch (task) {
    case Task::kRegression:
      for (std::int64_t i = 0; i < n; ++i) {
        const float y = labels[static_cast<std::size_t>(i)];
        bad |= !std::isfinite(y);
        const float d = logits(i, 0) - y;
        dlogits(i, 0) = d;
        loss += 0.5 * static_cast<double>(d) * d;
      }
      break;
    case Task::kBinary:
      for (std::int64_t i = 0; i < n; ++i) {
        const float z = logits(i, 0);
        const float y = labels[static_cast<std::size_t>(i)];
        bad |= y != 0.0f && y != 1.0f;
        // One exponential for both the sigmoid (as Sigmoid computes it) and the loss.
        const float e = std::exp(-std::fabs(z));
        dlogits(i, 0) = (z >= 0 ? 1.0f : e) / (1.0f + e) - y;
        loss += std::max(z, 0.0f) - z * y + std::log1p(e);
      }
      break;
    case Task::kMulticlass:
      CheckLabels(task, k, labels, n, row_offset);
      for (std::int64_t i = 0; i < n; ++i) {
        // logits and dlogits may alias: read what the loss needs before overwriting.
        const float* z = logits.row(i);
        float* g = dlogits.row(i);
        const float m = *std::max_element(z, z + k);
        const auto y = static_cast<std::int64_t>(labels[static_cast<std::size_t>(i)]);
        const float zy = z[y];
        float sum = 0;
        for (std::int64_t j = 0; j < k; ++j) {
          g[j] = std::exp(z[j] - m);
          sum += g[j];
        }
        loss += static_cast<double>(m) + std::log(static_cast<double>(sum)) - zy;
        const float inv = 1.0f / sum;
        for (std::int64_t j = 0; j < k; ++j) g[j] *= inv;
        g[y] -= 1.0f;
      }
      break;
  }
  if (bad) CheckLabels(task, k, labels, n, row_offset);
  return loss;
}

double Loss(Task task, ConstMatrixViewF logits, std::span<const float> labels) {
  const std::int64_t n = logits.rows();
  const std::int64_t k = logits.cols();
  CheckLabels(task, k, labels, n, 0);
  double loss = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float y = labels[static_cast<std::size_t>(i)];
    switch (task) {
      case Task::kRegression: {
        const double d = static_cast<double>(logits(i, 0)) - y;
        loss += 0.5 * d * d;
        break;
      }
      case Task::kBinary: {
        const float z = logits(i, 0);
        loss += std::max(z, 0.0f) - z * y + std::log1p(std::exp(-std::fabs(z)));
        break;
      }
      case Task::kMulticlass: {
        const float* z = logits.row(i);
        const float m = *std::max_element(z, z + k);
        double sum = 0;
        for (std::int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j] - m));
        loss += m + std::log(sum) - z[static_cast<std::int64_t>(y)];
        break;
      }
    }
  }
  return loss;
}

}  // namespace escala::models
