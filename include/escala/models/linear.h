// Generalised linear models: linear regression, logistic regression (binary) and softmax
// regression (multinomial). logits = x W + b with W num_features x num_outputs.
//
// Parameter layout: W row-major (feature-major), then b. L1/L2 penalties apply to W only.
#ifndef ESCALA_MODELS_LINEAR_H_
#define ESCALA_MODELS_LINEAR_H_

#include <memory>

#include "escala/models/model.h"

namespace escala::models {

class LinearModel final : public GradientModel {
 public:
  // task kRegression: linear regression; kBinary: logistic; kMulticlass: softmax with
  // num_classes outputs (>= 2; 2 classes is a valid two-output softmax).
  LinearModel(Task task, std::int64_t num_features, int num_classes = 0);

  std::string_view kind() const override;
  Task task() const override { return task_; }
  std::int64_t num_features() const override { return d_; }
  std::int64_t num_outputs() const override { return k_; }
  void Initialize(std::uint64_t seed) override;
  std::unique_ptr<Workspace> NewWorkspace() const override;
  void Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& ws) const override;
  double AccumulateGradient(ConstMatrixViewF x, std::span<const float> labels,
                            std::span<float> grad, const BatchContext& ctx, Workspace& ws,
                            const GradientReadyFn* ready = nullptr) const override;
  std::vector<std::pair<std::size_t, std::size_t>> ParameterGroups() const override;
  std::unique_ptr<GradientModel> CloneTrainable() const override;
  std::string Describe() const override;

  // Views of W (d x k) and b (k).
  MatrixView<const float> weights() const { return {params_.data(), d_, k_}; }
  MatrixView<float> weights() { return {params_.data(), d_, k_}; }
  std::span<const float> bias() const {
    return {params_.data() + d_ * k_, static_cast<size_t>(k_)};
  }
  std::span<float> bias() { return {params_.data() + d_ * k_, static_cast<size_t>(k_)}; }

 private:
  Task task_;
  std::int64_t d_;
  std::int64_t k_;
};

}  // namespace escala::models

#endif  // ESCALA_MODELS_LINEAR_H_
