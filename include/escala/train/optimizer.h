// First-order optimizers over a model's flat parameter vector, learning-rate schedules and
// gradient clipping.
//
// An optimizer receives the gradient of the *mean* loss over the global batch (the trainer has
// already summed it across threads and workers and divided by the batch size) and updates the
// parameters in place. Penalties are applied here so that every rank applies them identically:
// L2 (coupled: added to the gradient), decoupled weight decay (AdamW), and L1 by a proximal
// (soft-thresholding) step after the update. Penalties skip parameters whose penalty mask is 0
// (biases).
//
// The whole state (moments, step count) is exposed as flat vectors for checkpoints, so that a
// resumed run continues bit-for-bit.
//
// Thread-safety: none; one optimizer per model replica.
#ifndef ESCALA_TRAIN_OPTIMIZER_H_
#define ESCALA_TRAIN_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace escala::train {

struct OptimizerConfig {
  // "sgd", "momentum", "nesterov", "adam", "adamw" or "lbfgs" (full batch; see lbfgs.h).
  std::string name = "adam";
  float lr = 1e-3f;
  float momentum = 0.9f;  // momentum / nesterov
  float beta1 = 0.9f;     // adam / adamw
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;  // decoupled (adamw); for other optimizers use l2
  float l2 = 0.0f;            // coupled L2: adds l2 * w to the gradient
  float l1 = 0.0f;            // proximal L1 (elastic net with l2)
};

// Throws kInvalidArgument for an unknown name or an out-of-range value, naming the field.
void Validate(const OptimizerConfig& config);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update with learning rate `lr` (the schedule's value for this step).
  virtual void Step(std::span<float> params, std::span<const float> grad, float lr) = 0;
  // Moments etc. (layout private to each optimizer) and the number of steps taken.
  virtual std::vector<std::vector<float>>& state() = 0;
  std::uint64_t steps() const { return steps_; }
  void set_steps(std::uint64_t s) { steps_ = s; }

 protected:
  std::uint64_t steps_ = 0;
};

// `penalty_mask` (1 = penalised) must outlive the optimizer.
std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config, std::size_t num_params,
                                         std::span<const std::uint8_t> penalty_mask);

struct ScheduleConfig {
  // "constant", "step" (multiply by gamma every step_size steps), "cosine" (to min_lr over
  // total_steps) or "linear" (linear decay to min_lr over total_steps).
  std::string name = "constant";
  std::uint64_t warmup_steps = 0;  // linear warm-up from 0 to the base rate first
  std::uint64_t step_size = 1000;
  float gamma = 0.1f;
  float min_lr = 0.0f;
};

void Validate(const ScheduleConfig& config);

// Learning rate at `step` (0-based) for a run of `total_steps` steps.
float ScheduledLr(const ScheduleConfig& config, float base_lr, std::uint64_t step,
                  std::uint64_t total_steps);

// Scales grad so that its L2 norm is at most max_norm (no-op when max_norm <= 0). Returns the
// norm before clipping.
double ClipGradNorm(std::span<float> grad, double max_norm);

}  // namespace escala::train

#endif  // ESCALA_TRAIN_OPTIMIZER_H_
