#include "escala/models/linear.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/simd/products.h"
#include "escala/core/eigen.h"
#include "escala/core/error.h"
#include "models/registry.h"

namespace escala::models {
namespace {

struct LinearWorkspace final : Workspace {
  MatrixF z;  // logits, reused
};

// One row block's loss, accumulating its gradient into grad.
double BlockGradient(const LinearModel& m, ConstMatrixViewF x, std::span<const float> labels,
                     std::span<const float> weights, std::span<float> grad, LinearWorkspace& ws,
                     std::int64_t row_offset) {
  const std::int64_t d = m.num_features(), k = m.num_outputs();
  ws.z.Resize(x.rows(), k);
  m.Logits(x, ws.z.view(), ws);
  // dz overwrites z in place: the logits are not needed after the loss.
  const double loss =
      LossAndLogitGradient(m.task(), ws.z.view(), labels, ws.z.view(), row_offset, weights);
  const auto g = AsEigen(std::as_const(ws.z).view());
  auto gb = Eigen::Map<Eigen::RowVectorXf>(grad.data() + d * k, k);
  if (k == 1) {
    simd::MatVec(x, true, std::span<const float>(ws.z.data(), static_cast<std::size_t>(x.rows())),
                 grad.first(static_cast<std::size_t>(d)), true);
  } else {
    simd::MatMul(x, true, std::as_const(ws.z).view(), false, MatrixViewF(grad.data(), d, k), true);
  }
  gb += g.colwise().sum();
  return loss;
}

}  // namespace

LinearModel::LinearModel(Task task, std::int64_t num_features, int num_classes)
    : task_(task), d_(num_features) {
  ESCALA_CHECK(num_features > 0, kInvalidArgument, "linear model needs >= 1 feature, got {}",
               num_features);
  if (task == Task::kMulticlass) {
    ESCALA_CHECK(num_classes >= 2, kInvalidArgument,
                 "softmax regression needs >= 2 classes, got {}", num_classes);
    k_ = num_classes;
  } else {
    k_ = 1;
  }
  params_.assign(static_cast<std::size_t>(d_ * k_ + k_), 0.0f);
  penalty_mask_.assign(params_.size(), 1);
  for (std::int64_t j = 0; j < k_; ++j) penalty_mask_[static_cast<std::size_t>(d_ * k_ + j)] = 0;
}

std::string_view LinearModel::kind() const {
  switch (task_) {
    case Task::kRegression:
      return "linear";
    case Task::kBinary:
      return "logistic";
    case Task::kMulticlass:
      return "softmax";
  }
  return "linear";
}

void LinearModel::Initialize(std::uint64_t) {
  // Convex: the optimum does not depend on the start, and zeros are the conventional start.
  std::fill(params_.begin(), params_.end(), 0.0f);
}

std::unique_ptr<Workspace> LinearModel::NewWorkspace() const {
  return std::make_unique<LinearWorkspace>();
}

void LinearModel::Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace&) const {
  ESCALA_CHECK(x.cols() == d_, kInvalidArgument, "model expects {} features, got {}", d_, x.cols());
  ESCALA_ASSERT(logits.rows() == x.rows() && logits.cols() == k_);
  auto z = AsEigen(logits);
  const auto b = Eigen::Map<const Eigen::RowVectorXf>(params_.data() + d_ * k_, k_);
  if (k_ == 1 && logits.contiguous()) {
    const std::span<const float> w(params_.data(), static_cast<std::size_t>(d_));
    simd::MatVec(x, false, w, std::span<float>(logits.data(), static_cast<std::size_t>(x.rows())),
                 false);
  } else {
    simd::MatMul(x, false, weights(), false, logits, false);
  }
  z.rowwise() += b;
}

std::vector<std::pair<std::size_t, std::size_t>> LinearModel::ParameterGroups() const {
  return {{0, params_.size()}};
}

double LinearModel::AccumulateGradient(ConstMatrixViewF x, std::span<const float> labels,
                                       std::span<float> grad, const BatchContext& ctx,
                                       Workspace& ws_base, const GradientReadyFn* ready) const {
  ESCALA_ASSERT(grad.size() == params_.size());
  auto& ws = static_cast<LinearWorkspace&>(ws_base);
  // Row blocks of about 512 KiB of features: a block's logits and its gradient product read it
  // while it is in cache, so a full-batch pass reads the features from memory once, not twice.
  const std::int64_t block = std::max<std::int64_t>(64, (std::int64_t{512} << 10) / (4 * d_));
  double loss = 0;
  for (std::int64_t b = 0; b < x.rows(); b += block) {
    const std::int64_t n = std::min(block, x.rows() - b);
    const auto at = static_cast<std::size_t>(b), count = static_cast<std::size_t>(n);
    loss += BlockGradient(*this, x.Rows(b, n), labels.subspan(at, count),
                          ctx.weights.empty() ? ctx.weights : ctx.weights.subspan(at, count), grad,
                          ws, b);
  }
  if (ready != nullptr) (*ready)(0, params_.size());
  return loss;
}

std::unique_ptr<GradientModel> LinearModel::CloneTrainable() const {
  return std::make_unique<LinearModel>(*this);
}

std::string LinearModel::Describe() const {
  return fmt::format("{} {} features -> {} output(s) ({} parameters)", kind(), d_, k_,
                     params_.size());
}

// ---- the family entries ----------------------------------------------------------------------

namespace {

double LinearParameterCount(const ModelSpec& spec, Task task) {
  const double outputs = task == Task::kMulticlass ? std::max(spec.num_classes, 1) : 1;
  return (static_cast<double>(spec.num_features) + 1) * outputs;
}

std::unique_ptr<GradientModel> MakeLinear(const ModelSpec& spec, Task task) {
  return std::make_unique<LinearModel>(task, spec.num_features, spec.num_classes);
}

void SaveLinear(const Model& model, escala::model::v1::Model* out) {
  SaveParameters(dynamic_cast<const LinearModel&>(model), out);
}

std::unique_ptr<Model> LoadLinear(const escala::model::v1::Model& proto, Task task) {
  const int classes = task == Task::kMulticlass ? static_cast<int>(proto.num_outputs()) : 0;
  auto model = std::make_unique<LinearModel>(task, proto.num_features(), classes);
  LoadParameters(proto, *model);
  return model;
}

}  // namespace

const ModelFamily kLinearFamily = {
    "linear",  [](Task) { return Task::kRegression; }, LinearParameterCount, MakeLinear, SaveLinear,
    LoadLinear};
const ModelFamily kLogisticFamily = {"logistic",           [](Task) { return Task::kBinary; },
                                     LinearParameterCount, MakeLinear,
                                     SaveLinear,           LoadLinear};
const ModelFamily kSoftmaxFamily = {
    "softmax", [](Task) { return Task::kMulticlass; }, LinearParameterCount, MakeLinear, SaveLinear,
    LoadLinear};

}  // namespace escala::models
