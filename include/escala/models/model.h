// The model interfaces: what every model in escala provides for inference (Model), and what the
// gradient trainers additionally need (GradientModel).
//
// Model is the inference side: a function from a dense float32 feature matrix (one row per
// example) to raw scores ("logits": n x num_outputs()), plus a link that turns scores into
// predictions (identity for regression, sigmoid for binary, softmax for multiclass). The bundle,
// the Predictor, `escala score`/`evaluate` and the prediction server depend on this side only, so
// any family that can compute logits (gradient models, tree ensembles, imported graphs) plugs in
// without touching them. Every family has a registered kind name and a serialised form
// (escala/models/factory.h: SerializeModel/ParseModel dispatch on the kind).
//
// GradientModel is what the minibatch and L-BFGS trainers need: all parameters in one flat
// float32 array owned by the model, so that a gradient is one buffer: the communicator
// all-reduces it in one call (or in buckets, which are slices), optimizers update it in place,
// and checkpoints and bundles store it as is.
//
// Losses are sums over the rows given, not means: data-parallel training sums per-rank gradients
// and divides once by the global batch size, which is what makes N workers with global batch B
// compute exactly what one worker with batch B computes.
//
// Thread-safety: const methods (Predict, Logits, AccumulateGradient) may run concurrently from
// many threads, each with its own Workspace. Mutating the parameters while they run is a race.
#ifndef ESCALA_MODELS_MODEL_H_
#define ESCALA_MODELS_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "escala/core/matrix.h"

namespace escala::models {

enum class Task { kRegression, kBinary, kMulticlass };
std::string_view TaskName(Task task);

enum class Activation { kIdentity, kReLU, kTanh, kSigmoid, kGELU };
std::string_view ActivationName(Activation a);
// "relu", "tanh", "sigmoid", "gelu", "identity"; throws kInvalidArgument otherwise.
Activation ParseActivation(std::string_view name);

// Per-thread scratch memory for a model's forward and backward passes. Buffers grow to the
// largest batch seen and are then reused: no allocation per batch in steady state.
class Workspace {
 public:
  virtual ~Workspace() = default;
};

// Training-time context for one batch: what stochastic layers (dropout) need to be
// deterministic regardless of how rows are split across threads and workers.
struct BatchContext {
  bool training = false;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  // Global row identities of the batch rows (may be empty when training is false).
  std::span<const std::uint64_t> row_ids;
  // Per-row weights of the batch rows (finite, >= 0): each row's loss and gradient are multiplied
  // by its weight. Empty: every row weighs 1.
  std::span<const float> weights;
};

// Called while a gradient is being accumulated, once per parameter group (a layer), as soon as
// that group's slice [begin, end) of the gradient is final for this call. Groups finish in
// backward order (the last layer first), so a data-parallel trainer can start all-reducing them
// while earlier layers are still being computed.
using GradientReadyFn = std::function<void(std::size_t begin, std::size_t end)>;

// The inference side of a model.
class Model {
 public:
  virtual ~Model() = default;

  // The registered family name: "linear", "logistic", "softmax", "mlp".
  virtual std::string_view kind() const = 0;
  virtual Task task() const = 0;
  virtual std::int64_t num_features() const = 0;
  // Width of the logits: 1 for regression and binary, C for C-class multiclass.
  virtual std::int64_t num_outputs() const = 0;
  // 0 for regression, 2 for binary, C for multiclass.
  int num_classes() const;

  virtual std::unique_ptr<Workspace> NewWorkspace() const = 0;

  // True for a model whose Logits() are already predictions (an imported graph that ends in its
  // own sigmoid or softmax): Predict() then applies no link.
  virtual bool OutputsArePredictions() const { return false; }

  // Raw scores: logits is x.rows() x num_outputs(). Inference mode (no dropout).
  virtual void Logits(ConstMatrixViewF x, MatrixViewF logits, Workspace& ws) const = 0;

  // Predictions: for regression the value (n x 1), for binary P(y = 1) (n x 1), for multiclass
  // the class probabilities (n x C).
  void Predict(ConstMatrixViewF x, MatrixViewF out, Workspace& ws) const;

  // Regression trained on a standardised target: Predict() returns the model's output times
  // `scale` plus `shift` (Logits() and training stay in standardised units). Default: 0, 1.
  void SetTargetScaling(double shift, double scale);
  double target_shift() const { return target_shift_; }
  double target_scale() const { return target_scale_; }

  virtual std::unique_ptr<Model> Clone() const = 0;

  // A one-line description: "mlp 64-256-256-1 relu dropout 0.1 (82433 parameters)".
  virtual std::string Describe() const = 0;

 private:
  double target_shift_ = 0.0;
  double target_scale_ = 1.0;
};

// The side of a model that gradient trainers (minibatch optimizers, L-BFGS, the CUDA backend)
// need: flat parameters, gradients, parameter groups.
class GradientModel : public Model {
 public:
  std::span<float> parameters() { return params_; }
  std::span<const float> parameters() const { return params_; }
  // 1 where a parameter is a weight subject to L1/L2 penalties and weight decay, 0 for biases.
  std::span<const std::uint8_t> penalty_mask() const { return penalty_mask_; }

  // Re-initialises the parameters from `seed` (He for ReLU-family layers, Xavier otherwise;
  // zeros for linear models).
  virtual void Initialize(std::uint64_t seed) = 0;

  // Adds to `grad` (size parameters().size()) the gradient of the summed loss over the rows of
  // x, and returns that summed loss (without penalties). Labels: the target value for
  // regression, 0/1 for binary, the class index 0..C-1 for multiclass; validated, an invalid
  // label throws kInvalidArgument naming the row.
  // `ready`, when given, is told as each parameter group's gradient becomes final.
  virtual double AccumulateGradient(ConstMatrixViewF x, std::span<const float> labels,
                                    std::span<float> grad, const BatchContext& ctx, Workspace& ws,
                                    const GradientReadyFn* ready = nullptr) const = 0;

  // Parameter groups (layers) as [begin, end) ranges of parameters(), in layout order; together
  // they cover every parameter.
  virtual std::vector<std::pair<std::size_t, std::size_t>> ParameterGroups() const = 0;

  // A copy that can go on training.
  virtual std::unique_ptr<GradientModel> CloneTrainable() const = 0;
  std::unique_ptr<Model> Clone() const final { return CloneTrainable(); }

 protected:
  // Derived constructors size the parameter vector and mask.
  AlignedVector<float> params_;  // aligned: see AlignedAllocator
  std::vector<std::uint8_t> penalty_mask_;
};

// Applies the task's link to logits in place (sigmoid / softmax / identity).
void ApplyLink(Task task, MatrixViewF logits);

// Summed loss over rows and its gradient with respect to the logits (overwritten in dlogits):
// squared error 0.5 (z - y)^2, binary cross-entropy with logits, softmax cross-entropy.
// Numerically stable for any finite logits. Throws kInvalidArgument for labels outside the
// task's domain, naming the row (offset by `row_offset` in the message). With `weights` (one per
// row), each row's loss and logit gradient are multiplied by its weight.
double LossAndLogitGradient(Task task, ConstMatrixViewF logits, std::span<const float> labels,
                            MatrixViewF dlogits, std::int64_t row_offset = 0,
                            std::span<const float> weights = {});

// Summed loss only.
double Loss(Task task, ConstMatrixViewF logits, std::span<const float> labels);

}  // namespace escala::models

#endif  // ESCALA_MODELS_MODEL_H_
