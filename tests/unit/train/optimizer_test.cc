#include "escala/train/optimizer.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "escala/core/error.h"
#include "escala/train/lbfgs.h"

namespace escala::train {
namespace {

TEST(Optimizer, SgdWithL2SkipsMaskedParameters) {
  OptimizerConfig c;
  c.name = "sgd";
  c.l2 = 0.5f;
  const std::vector<std::uint8_t> mask = {1, 0};
  auto opt = MakeOptimizer(c, 2, mask);
  std::vector<float> w = {2.0f, 2.0f};
  const std::vector<float> g = {1.0f, 1.0f};
  opt->Step(w, g, 0.1f);
  EXPECT_FLOAT_EQ(w[0], 2.0f - 0.1f * (1.0f + 0.5f * 2.0f));
  EXPECT_FLOAT_EQ(w[1], 2.0f - 0.1f * 1.0f);
}

TEST(Optimizer, AdamFirstStepIsLrTimesSign) {
  OptimizerConfig c;
  c.name = "adam";
  const std::vector<std::uint8_t> mask = {1, 1};
  auto opt = MakeOptimizer(c, 2, mask);
  std::vector<float> w = {0.0f, 0.0f};
  const std::vector<float> g = {3.0f, -0.01f};
  opt->Step(w, g, 0.01f);
  // After bias correction the first Adam step is lr * g / |g| (up to epsilon).
  EXPECT_NEAR(w[0], -0.01f, 1e-6);
  EXPECT_NEAR(w[1], 0.01f, 1e-5);
  EXPECT_EQ(opt->steps(), 1u);
  EXPECT_EQ(opt->state().size(), 2u);
}

TEST(Optimizer, MomentumAccumulates) {
  OptimizerConfig c;
  c.name = "momentum";
  c.momentum = 0.5f;
  const std::vector<std::uint8_t> mask = {1};
  auto opt = MakeOptimizer(c, 1, mask);
  std::vector<float> w = {0.0f};
  const std::vector<float> g = {1.0f};
  opt->Step(w, g, 1.0f);  // v = 1
  opt->Step(w, g, 1.0f);  // v = 1.5
  EXPECT_FLOAT_EQ(w[0], -2.5f);
}

TEST(Optimizer, AdamWDecaysOnlyMaskedWeights) {
  OptimizerConfig c;
  c.name = "adamw";
  c.weight_decay = 0.1f;
  const std::vector<std::uint8_t> mask = {1, 0};
  auto opt = MakeOptimizer(c, 2, mask);
  std::vector<float> w = {1.0f, 1.0f};
  const std::vector<float> g = {0.0f, 0.0f};
  opt->Step(w, g, 0.5f);
  EXPECT_NEAR(w[0], 1.0f - 0.5f * 0.1f, 1e-6);
  EXPECT_FLOAT_EQ(w[1], 1.0f);
}

TEST(Optimizer, L1ProximalStepProducesExactZeros) {
  OptimizerConfig c;
  c.name = "sgd";
  c.l1 = 1.0f;
  const std::vector<std::uint8_t> mask = {1, 1};
  auto opt = MakeOptimizer(c, 2, mask);
  std::vector<float> w = {0.05f, 3.0f};
  const std::vector<float> g = {0.0f, 0.0f};
  opt->Step(w, g, 0.1f);
  EXPECT_EQ(w[0], 0.0f);
  EXPECT_FLOAT_EQ(w[1], 2.9f);
}

TEST(Optimizer, ValidationNamesTheField) {
  OptimizerConfig c;
  c.name = "rmsprop";
  EXPECT_THROW(Validate(c), Error);
  c.name = "adam";
  c.lr = -1;
  try {
    Validate(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lr"), std::string::npos);
  }
}

TEST(Schedule, WarmupCosineStepLinear) {
  ScheduleConfig s;
  s.name = "cosine";
  s.warmup_steps = 10;
  EXPECT_FLOAT_EQ(ScheduledLr(s, 1.0f, 0, 110), 0.1f);
  EXPECT_FLOAT_EQ(ScheduledLr(s, 1.0f, 9, 110), 1.0f);
  EXPECT_NEAR(ScheduledLr(s, 1.0f, 60, 110), 0.5f, 1e-6);
  EXPECT_NEAR(ScheduledLr(s, 1.0f, 110, 110), 0.0f, 1e-6);
  s = {};
  s.name = "step";
  s.step_size = 5;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(ScheduledLr(s, 1.0f, 12, 100), 0.25f);
  s.name = "linear";
  EXPECT_FLOAT_EQ(ScheduledLr(s, 1.0f, 50, 100), 0.5f);
  s.name = "exponential";
  EXPECT_THROW(Validate(s), Error);
}

TEST(Clip, ScalesToMaxNorm) {
  std::vector<float> g = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(ClipGradNorm(g, 1.0), 5.0);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-6);
  std::vector<float> h = {0.3f, 0.4f};
  ClipGradNorm(h, 1.0);
  EXPECT_FLOAT_EQ(h[0], 0.3f);
}

TEST(Lbfgs, MinimisesRosenbrock) {
  auto f = [](std::span<const double> x, std::span<double> g) {
    const double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  std::vector<double> x = {-1.2, 1.0};
  LbfgsOptions o;
  o.max_iterations = 500;
  o.function_tolerance = 0;
  o.gradient_tolerance = 1e-8;
  const auto r = MinimizeLbfgs(f, x, o);
  EXPECT_TRUE(r.converged) << r.reason;
  EXPECT_NEAR(x[0], 1.0, 1e-5);
  EXPECT_NEAR(x[1], 1.0, 1e-5);
}

TEST(Lbfgs, OwlqnSatisfiesLassoOptimality) {
  // f(x) = 0.5 |A x - b|^2 with a penalty l1 |x|: at the optimum, |grad_i| <= l1 where x_i = 0
  // and grad_i = -l1 sign(x_i) elsewhere.
  const int n = 6;
  std::vector<double> a(n * n), bvec(n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j)
      a[static_cast<std::size_t>(i * n + j)] = (i == j ? 2.0 : 0.3 * std::sin(i + 2 * j));
    bvec[static_cast<std::size_t>(i)] = (i % 2 == 0) ? 1.0 : 0.05;
  }
  auto f = [&](std::span<const double> x, std::span<double> g) {
    std::vector<double> r(n);
    double v = 0;
    for (int i = 0; i < n; ++i) {
      double s = -bvec[static_cast<std::size_t>(i)];
      for (int j = 0; j < n; ++j)
        s += a[static_cast<std::size_t>(i * n + j)] * x[static_cast<std::size_t>(j)];
      r[static_cast<std::size_t>(i)] = s;
      v += 0.5 * s * s;
    }
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int i = 0; i < n; ++i)
        s += a[static_cast<std::size_t>(i * n + j)] * r[static_cast<std::size_t>(i)];
      g[static_cast<std::size_t>(j)] = s;
    }
    return v;
  };
  std::vector<double> x(n, 0.0);
  LbfgsOptions o;
  o.l1 = 0.5;
  o.max_iterations = 500;
  o.function_tolerance = 0;
  o.gradient_tolerance = 1e-9;
  MinimizeLbfgs(f, x, o);
  std::vector<double> g(n);
  f(x, g);
  int zeros = 0;
  for (int j = 0; j < n; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    if (x[jj] == 0.0) {
      ++zeros;
      EXPECT_LE(std::fabs(g[jj]), o.l1 + 1e-6) << j;
    } else {
      EXPECT_NEAR(g[jj], -o.l1 * (x[jj] > 0 ? 1 : -1), 1e-5) << j;
    }
  }
  EXPECT_GT(zeros, 0);
}

}  // namespace
}  // namespace escala::train
