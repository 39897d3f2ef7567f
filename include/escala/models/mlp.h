// Multilayer perceptron: fully connected hidden layers with a shared activation and optional
// (inverted) dropout, and a head chosen by the task: linear for regression, sigmoid for binary,
// softmax for multiclass.
//
// Parameter layout: for each layer l, W_l (in x out, row-major) then b_l. Dropout masks are a
// pure function of (seed, step, global row id, unit), so training is deterministic however the
// batch is split across threads and workers.
#ifndef ESCALA_MODELS_MLP_H_
#define ESCALA_MODELS_MLP_H_

#include <memory>
#include <vector>

#include "escala/models/model.h"

namespace escala::models {

struct MlpSpec {
  Task task = Task::kBinary;
  std::int64_t num_features = 0;
  int num_classes = 2;  // multiclass only
  std::vector<std::int64_t> hidden = {256, 256};
  Activation activation = Activation::kReLU;
  float dropout = 0.0f;  // probability of dropping a hidden unit while training, in [0, 1)
};

class Mlp final : public GradientModel {
 public:
  explicit Mlp(const MlpSpec& spec);

  std::string_view kind() const override { return "mlp"; }
  Task task() const override { return spec_.task; }
  std::int64_t num_features() const override { return spec_.num_features; }
  std::int64_t num_outputs() const override { return sizes_.back(); }
  void Initialize(std::uint64_t seed) override;
  std::unique_ptr<Workspace> NewWorkspace() const override;
  void Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& ws) const override;
  double AccumulateGradient(ConstMatrixViewF x, std::span<const float> labels,
                            std::span<float> grad, const BatchContext& ctx, Workspace& ws,
                            const GradientReadyFn* ready = nullptr) const override;
  std::vector<std::pair<std::size_t, std::size_t>> ParameterGroups() const override;
  std::unique_ptr<GradientModel> CloneTrainable() const override;
  std::string Describe() const override;

  const MlpSpec& spec() const { return spec_; }
  // Layer widths: num_features, hidden..., num_outputs.
  const std::vector<std::int64_t>& sizes() const { return sizes_; }
  // Offset of layer l's W in parameters(); b_l follows W_l.
  std::size_t weight_offset(std::size_t layer) const { return offsets_[layer]; }

 private:
  struct Ws;
  void Forward(ConstMatrixViewF x, Ws& ws, const BatchContext* train) const;

  MlpSpec spec_;
  std::vector<std::int64_t> sizes_;
  std::vector<std::size_t> offsets_;
};

}  // namespace escala::models

#endif  // ESCALA_MODELS_MLP_H_
