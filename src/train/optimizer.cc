#include "escala/train/optimizer.h"

#include <cmath>

#include "escala/core/error.h"
#include "escala/core/parallel.h"

namespace escala::train {

void Validate(const OptimizerConfig& c) {
  static const char* kNames[] = {"sgd", "momentum", "nesterov", "adam", "adamw", "lbfgs"};
  bool known = false;
  for (const char* n : kNames) known |= c.name == n;
  ESCALA_CHECK(known, kInvalidArgument,
               "optimizer: unknown name '{}' (expected sgd, momentum, nesterov, adam, adamw or "
               "lbfgs)",
               c.name);
  ESCALA_CHECK(std::isfinite(c.lr) && c.lr > 0, kInvalidArgument,
               "optimizer.lr must be > 0, got {}", c.lr);
  ESCALA_CHECK(c.momentum >= 0 && c.momentum < 1, kInvalidArgument,
               "optimizer.momentum must be in [0, 1), got {}", c.momentum);
  ESCALA_CHECK(c.beta1 >= 0 && c.beta1 < 1, kInvalidArgument,
               "optimizer.beta1 must be in [0, 1), got {}", c.beta1);
  ESCALA_CHECK(c.beta2 >= 0 && c.beta2 < 1, kInvalidArgument,
               "optimizer.beta2 must be in [0, 1), got {}", c.beta2);
  ESCALA_CHECK(c.epsilon > 0, kInvalidArgument, "optimizer.epsilon must be > 0, got {}", c.epsilon);
  ESCALA_CHECK(c.weight_decay >= 0, kInvalidArgument, "weight_decay must be >= 0, got {}",
               c.weight_decay);
  ESCALA_CHECK(c.l2 >= 0, kInvalidArgument, "l2 must be >= 0, got {}", c.l2);
  ESCALA_CHECK(c.l1 >= 0, kInvalidArgument, "l1 must be >= 0, got {}", c.l1);
}

namespace {

// Parameters per parallel task: the updates are elementwise, so any split gives the same bits;
// below a few thousand the task costs more than it saves.
constexpr std::size_t kGrain = 16384;

class FirstOrder : public Optimizer {
 public:
  FirstOrder(const OptimizerConfig& c, std::size_t n, std::span<const std::uint8_t> mask,
             int moments)
      : c_(c), mask_(mask), state_(static_cast<std::size_t>(moments), std::vector<float>(n)) {}

  std::vector<std::vector<float>>& state() override { return state_; }

  void Step(std::span<float> w, std::span<const float> g, float lr) override {
    ESCALA_ASSERT(w.size() == g.size() && w.size() == mask_.size());
    ++steps_;
    ParallelFor(w.size(), kGrain, [&](std::size_t b, std::size_t e) {
      Update(w.data(), g.data(), lr, b, e);
      if (c_.l1 > 0) {
        // Proximal step for lr * l1 * |w|: soft-thresholding keeps exact zeros (sparsity).
        const float t = lr * c_.l1;
        for (std::size_t i = b; i < e; ++i) {
          if (!mask_[i]) continue;
          const float a = std::fabs(w[i]) - t;
          w[i] = a > 0 ? std::copysign(a, w[i]) : 0.0f;
        }
      }
    });
  }

 protected:
  // Updates parameters [b, e). The loops are written to vectorise: raw pointers that do not
  // alias, and the penalty mask as a select rather than a branch.
  virtual void Update(float* w, const float* g, float lr, std::size_t b, std::size_t e) = 0;
  // Gradient with coupled L2 for parameter i: g + l2 * w where the penalty applies.
  float G(const float* __restrict w, const float* __restrict g, std::size_t i) const {
    return mask_[i] ? g[i] + c_.l2 * w[i] : g[i];
  }

  OptimizerConfig c_;
  std::span<const std::uint8_t> mask_;
  std::vector<std::vector<float>> state_;
};

class Sgd final : public FirstOrder {
 public:
  Sgd(const OptimizerConfig& c, std::size_t n, std::span<const std::uint8_t> m)
      : FirstOrder(c, n, m, 0) {}

 protected:
  void Update(float* __restrict w, const float* __restrict g, float lr, std::size_t b,
              std::size_t e) override {
    for (std::size_t i = b; i < e; ++i) w[i] -= lr * G(w, g, i);
  }
};

class Momentum final : public FirstOrder {
 public:
  Momentum(const OptimizerConfig& c, std::size_t n, std::span<const std::uint8_t> m, bool nesterov)
      : FirstOrder(c, n, m, 1), nesterov_(nesterov) {}

 protected:
  void Update(float* __restrict w, const float* __restrict g, float lr, std::size_t b,
              std::size_t e) override {
    float* __restrict v = state_[0].data();
    const float mu = c_.momentum;
    if (nesterov_) {
      for (std::size_t i = b; i < e; ++i) {
        const float gi = G(w, g, i);
        v[i] = mu * v[i] + gi;
        w[i] -= lr * (gi + mu * v[i]);
      }
    } else {
      for (std::size_t i = b; i < e; ++i) {
        v[i] = mu * v[i] + G(w, g, i);
        w[i] -= lr * v[i];
      }
    }
  }

 private:
  bool nesterov_;
};

class Adam final : public FirstOrder {
 public:
  Adam(const OptimizerConfig& c, std::size_t n, std::span<const std::uint8_t> m, bool decoupled)
      : FirstOrder(c, n, m, 2), decoupled_(decoupled) {}

 protected:
  void Update(float* __restrict w, const float* __restrict g, float lr, std::size_t b,
              std::size_t e) override {
    float* __restrict m = state_[0].data();
    float* __restrict v = state_[1].data();
    const std::uint8_t* __restrict mask = mask_.data();
    const float b1 = c_.beta1;
    const float b2 = c_.beta2;
    const auto t = static_cast<double>(steps_);
    // Bias corrections folded into the step size (as in the Adam paper's efficient form).
    const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), t));
    const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), t));
    const float step = lr * std::sqrt(c2) / c1;
    const float eps = c_.epsilon * std::sqrt(c2);
    const float decay = decoupled_ ? lr * c_.weight_decay : 0.0f;
    const float l2 = c_.l2;
    for (std::size_t i = b; i < e; ++i) {
      const bool penalised = mask[i] != 0;
      const float gi = penalised ? g[i] + l2 * w[i] : g[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      float wi = w[i];
      wi = penalised && decay > 0 ? wi - decay * wi : wi;
      w[i] = wi - step * m[i] / (std::sqrt(v[i]) + eps);
    }
  }

 private:
  bool decoupled_;
};

}  // namespace

std::unique_ptr<Optimizer> MakeOptimizer(const OptimizerConfig& config, std::size_t n,
                                         std::span<const std::uint8_t> mask) {
  Validate(config);
  ESCALA_CHECK(mask.size() == n, kInvalidArgument, "penalty mask has {} entries for {} parameters",
               mask.size(), n);
  if (config.name == "sgd") return std::make_unique<Sgd>(config, n, mask);
  if (config.name == "momentum") return std::make_unique<Momentum>(config, n, mask, false);
  if (config.name == "nesterov") return std::make_unique<Momentum>(config, n, mask, true);
  if (config.name == "adam") return std::make_unique<Adam>(config, n, mask, false);
  if (config.name == "adamw") return std::make_unique<Adam>(config, n, mask, true);
  Throw(ErrorCode::kInvalidArgument,
        "optimizer '{}' is full-batch and has no per-step form; the trainer runs it separately",
        config.name);
}

void Validate(const ScheduleConfig& c) {
  ESCALA_CHECK(c.name == "constant" || c.name == "step" || c.name == "cosine" || c.name == "linear",
               kInvalidArgument,
               "schedule: unknown name '{}' (expected constant, step, cosine or linear)", c.name);
  ESCALA_CHECK(c.step_size > 0, kInvalidArgument, "schedule.step_size must be > 0");
  ESCALA_CHECK(c.gamma > 0 && c.gamma <= 1, kInvalidArgument,
               "schedule.gamma must be in (0, 1], got {}", c.gamma);
  ESCALA_CHECK(c.min_lr >= 0, kInvalidArgument, "schedule.min_lr must be >= 0");
}

float ScheduledLr(const ScheduleConfig& c, float base, std::uint64_t step,
                  std::uint64_t total_steps) {
  if (step < c.warmup_steps) {
    return base * static_cast<float>(step + 1) / static_cast<float>(c.warmup_steps);
  }
  const std::uint64_t s = step - c.warmup_steps;
  const std::uint64_t span = total_steps > c.warmup_steps ? total_steps - c.warmup_steps : 1;
  const double progress = std::min(1.0, static_cast<double>(s) / static_cast<double>(span));
  if (c.name == "step") {
    return base * std::pow(c.gamma, static_cast<float>(s / c.step_size));
  }
  if (c.name == "cosine") {
    return c.min_lr + (base - c.min_lr) * 0.5f *
                          static_cast<float>(1.0 + std::cos(3.14159265358979323846 * progress));
  }
  if (c.name == "linear") {
    return c.min_lr + (base - c.min_lr) * static_cast<float>(1.0 - progress);
  }
  return base;
}

double ClipGradNorm(std::span<float> grad, double max_norm) {
  double sq = 0;
  for (float g : grad) sq += static_cast<double>(g) * g;
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const auto scale = static_cast<float>(max_norm / norm);
    for (float& g : grad) g *= scale;
  }
  return norm;
}

}  // namespace escala::train
