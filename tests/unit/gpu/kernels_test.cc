// Every CUDA kernel and cuBLAS call of the backend against the CPU reference, on fresh random
// inputs, with outputs poisoned (NaN) before each run. Skipped without a CUDA device.
//
// Bounds, and the error each is measured in:
//   GEMM, FP32:  |gpu - exact| <= 1e-5 * sum_k |a_ik b_kj|   (relative to the terms' magnitude,
//   GEMM, TF32:  |gpu - exact| <= 1e-3 * sum_k |a_ik b_kj|    the scale rounding errors live on;
//                                                             TF32 for k >= 129)
//   elementwise kernels (activations, loss gradients, optimizer): relative error <= 1e-5, taken
//     against max(|reference|, 1) for activations and loss gradients (absolute near zero, where
//     formulas like 1 + erf(x) cancel) and against max(|reference|, 1e-3) for parameters;
//   sums: relative error <= 1e-12 against a double-precision reference.
#include "kernels/kernels.h"

#include <cmath>
#include <numeric>

#include <gtest/gtest.h>

#include "blas.h"
#include "escala/core/random.h"
#include "escala/models/model.h"
#include "escala/train/optimizer.h"
#include "gpu_test_util.h"
#include "train/device_model.h"

namespace escala::gpu {
namespace {

using internal::Blas;
using internal::DeviceBuffer;
using namespace testing;

void CheckCuda(cudaError_t e) {
  ASSERT_EQ(e, cudaSuccess) << cudaGetErrorString(e);
}

struct GemmCase {
  int m, n, k;
};

// Row-major C = op(A) op(B) in double, and the per-element scale sum_k |a||b|.
void ReferenceGemm(bool ta, bool tb, const GemmCase& c, const std::vector<float>& a,
                   const std::vector<float>& b, std::vector<double>* out,
                   std::vector<double>* scale) {
  out->assign(static_cast<std::size_t>(c.m) * c.n, 0.0);
  scale->assign(out->size(), 0.0);
  for (int i = 0; i < c.m; ++i) {
    for (int j = 0; j < c.n; ++j) {
      double s = 0, sa = 0;
      for (int p = 0; p < c.k; ++p) {
        const double av = ta ? a[static_cast<std::size_t>(p) * c.m + i]
                             : a[static_cast<std::size_t>(i) * c.k + p];
        const double bv = tb ? b[static_cast<std::size_t>(j) * c.k + p]
                             : b[static_cast<std::size_t>(p) * c.n + j];
        s += av * bv;
        sa += std::fabs(av * bv);
      }
      (*out)[static_cast<std::size_t>(i) * c.n + j] = s;
      (*scale)[static_cast<std::size_t>(i) * c.n + j] = sa;
    }
  }
}

void RunGemm(bool tf32, double bound, const std::vector<GemmCase>& cases) {
  internal::Stream stream;
  Blas blas(0, stream.get(), tf32);
  std::uint64_t seed = 100;
  for (const GemmCase& c : cases) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        const auto a = Random(static_cast<std::size_t>(c.m) * c.k, seed++);
        const auto b = Random(static_cast<std::size_t>(c.k) * c.n, seed++);
        auto da = Upload(a);
        auto db = Upload(b);
        auto dc = Poisoned<float>(static_cast<std::size_t>(c.m) * c.n);
        // Leading dimensions of the matrices as stored (row strides).
        const int lda = ta ? c.m : c.k;
        const int ldb = tb ? c.k : c.n;
        blas.Gemm(ta, tb, c.m, c.n, c.k, 1.0f, da.data(), lda, db.data(), ldb, 0.0f, dc.data(),
                  c.n);
        stream.Synchronize();
        const auto got = Download(dc, static_cast<std::size_t>(c.m) * c.n);
        std::vector<double> want, scale;
        ReferenceGemm(ta, tb, c, a, b, &want, &scale);
        double worst = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
          ASSERT_TRUE(std::isfinite(got[i])) << "unwritten element " << i;
          worst = std::max(worst, std::fabs(got[i] - want[i]) / scale[i]);
        }
        EXPECT_LE(worst, bound) << "m " << c.m << " n " << c.n << " k " << c.k << " ta " << ta
                                << " tb " << tb << (tf32 ? " tf32" : " fp32");
      }
    }
  }
}

TEST(GpuKernels, GemmFp32MatchesDoubleReference) {
  ESCALA_REQUIRE_GPU();
  RunGemm(false, 1e-5, {{37, 53, 129}, {256, 130, 784}, {1, 7, 3}});
}

TEST(GpuKernels, GemmTf32MatchesDoubleReference) {
  ESCALA_REQUIRE_GPU();
  // Reductions of 129 and 784 terms: one product of TF32-rounded inputs can be off by up to
  // 2^-9 of its size when the hardware truncates, and such errors average out over a reduction.
  RunGemm(true, 1e-3, {{37, 53, 129}, {256, 130, 784}});
}

TEST(GpuKernels, ColumnSums) {
  ESCALA_REQUIRE_GPU();
  internal::Stream stream;
  Blas blas(0, stream.get(), false);
  const int rows = 301, cols = 67;
  const auto a = Random(static_cast<std::size_t>(rows) * cols, 7);
  auto da = Upload(a);
  auto ones = Upload(std::vector<float>(rows, 1.0f));
  auto dy = Poisoned<float>(cols);
  blas.ColumnSums(da.data(), rows, cols, ones.data(), 0.0f, dy.data());
  const auto got = Download(dy, cols);
  for (int j = 0; j < cols; ++j) {
    double s = 0, sa = 0;
    for (int i = 0; i < rows; ++i) {
      s += a[static_cast<std::size_t>(i) * cols + j];
      sa += std::fabs(a[static_cast<std::size_t>(i) * cols + j]);
    }
    EXPECT_LE(std::fabs(got[static_cast<std::size_t>(j)] - s) / sa, 1e-5) << j;
  }
}

// The CPU's activation formulas (src/models/mlp.cc) and their derivatives.
double Act(models::Activation act, float z) {
  switch (act) {
    case models::Activation::kReLU:
      return std::max(z, 0.0f);
    case models::Activation::kTanh:
      return std::tanh(z);
    case models::Activation::kSigmoid:
      return 1.0f / (1.0f + std::exp(-z));
    case models::Activation::kGELU:
      return 0.5f * z * (1.0f + std::erf(z * 0.70710678118654752f));
    default:
      return z;
  }
}
double Deriv(models::Activation act, float z) {
  switch (act) {
    case models::Activation::kReLU:
      return z > 0 ? 1.0 : 0.0;
    case models::Activation::kTanh: {
      const float a = std::tanh(z);
      return 1.0f - a * a;
    }
    case models::Activation::kSigmoid: {
      const float a = 1.0f / (1.0f + std::exp(-z));
      return a * (1.0f - a);
    }
    case models::Activation::kGELU:
      return 0.5f * (1.0f + std::erf(z * 0.70710678118654752f)) +
             z * 0.39894228040143268f * std::exp(-0.5f * (z * z));
    default:
      return 1.0;
  }
}

// The CPU's dropout mask (src/models/mlp.cc) for hidden layer `layer`.
float CpuMask(float rate, std::uint64_t seed, std::uint64_t step, std::size_t layer,
              std::uint64_t row_id, std::size_t unit) {
  if (rate <= 0) return 1.0f;
  const auto threshold =
      static_cast<std::uint64_t>(static_cast<double>(rate) * 18446744073709551616.0);
  const std::uint64_t base = Mix64(seed ^ Mix64(step ^ Mix64(layer + 1)));
  const std::uint64_t row = Mix64(base ^ row_id);
  return Mix64(row + unit) < threshold ? 0.0f : 1.0f / (1.0f - rate);
}

TEST(GpuKernels, BiasActivationAndBackwardWithDropout) {
  ESCALA_REQUIRE_GPU();
  const int rows = 97, cols = 45;
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  std::vector<std::uint64_t> ids(rows);
  std::mt19937_64 rng(3);
  for (auto& id : ids) id = rng() % 1000000;
  auto dids = Upload(ids);
  std::uint64_t seed = 500;
  for (auto act :
       {models::Activation::kIdentity, models::Activation::kReLU, models::Activation::kTanh,
        models::Activation::kSigmoid, models::Activation::kGELU}) {
    for (float rate : {0.0f, 0.3f}) {
      const auto z = Random(n, seed++, -4.0f, 4.0f);
      const auto bias = Random(static_cast<std::size_t>(cols), seed++);
      const auto dy = Random(n, seed++);
      auto dz = Upload(z);
      auto db = Upload(bias);
      auto dout = Poisoned<float>(n);
      const auto drop = internal::DropoutFor(rate, 42, 7, 1);
      const auto kact = static_cast<kernels::Act>(static_cast<int>(act));
      CheckCuda(kernels::LaunchBiasActivation(dz.data(), db.data(), dout.data(), rows, cols, kact,
                                              dids.data(), drop, nullptr));
      const auto zb = Download(dz, n);
      const auto y = Download(dout, n);
      std::vector<double> want_z(n), want_y(n);
      for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) {
          const std::size_t k = static_cast<std::size_t>(i) * cols + j;
          const float zk = z[k] + bias[static_cast<std::size_t>(j)];
          want_z[k] = zk;
          want_y[k] = static_cast<float>(Act(act, zk)) * CpuMask(rate, 42, 7, 1,
                                                                 ids[static_cast<std::size_t>(i)],
                                                                 static_cast<std::size_t>(j));
          if (rate > 0 && CpuMask(rate, 42, 7, 1, ids[static_cast<std::size_t>(i)],
                                  static_cast<std::size_t>(j)) == 0.0f) {
            ASSERT_EQ(y[k], 0.0f) << "dropped unit kept at " << i << "," << j;
          }
        }
      }
      EXPECT_EQ(MaxRelError(zb, want_z, 1.0), 0.0) << ActivationName(act);
      EXPECT_LE(MaxRelError(y, want_y, 1.0), 1e-5) << ActivationName(act) << " rate " << rate;

      // Backward, in place as the model runs it.
      auto ddy = Upload(dy);
      CheckCuda(kernels::LaunchActivationBackward(ddy.data(), dz.data(), ddy.data(), rows, cols,
                                                  kact, dids.data(), drop, nullptr));
      const auto got = Download(ddy, n);
      std::vector<double> want(n);
      for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) {
          const std::size_t k = static_cast<std::size_t>(i) * cols + j;
          want[k] =
              static_cast<float>(dy[k] * CpuMask(rate, 42, 7, 1, ids[static_cast<std::size_t>(i)],
                                                 static_cast<std::size_t>(j))) *
              Deriv(act, static_cast<float>(want_z[k]));
        }
      }
      EXPECT_LE(MaxRelError(got, want, 1.0), 1e-5) << ActivationName(act) << " rate " << rate;
    }
  }
}

TEST(GpuKernels, LossAndLogitGradientMatchTheCpu) {
  ESCALA_REQUIRE_GPU();
  const int rows = 203;
  std::uint64_t seed = 900;
  for (auto task : {models::Task::kRegression, models::Task::kBinary, models::Task::kMulticlass}) {
    const int k = task == models::Task::kMulticlass ? 7 : 1;
    const std::size_t n = static_cast<std::size_t>(rows) * k;
    const auto logits = Random(n, seed++, -6.0f, 6.0f);
    std::vector<float> labels(rows);
    std::mt19937_64 rng(seed++);
    for (float& y : labels) {
      y = task == models::Task::kRegression ? static_cast<float>(rng() % 2000) / 100.0f - 10.0f
          : task == models::Task::kBinary   ? static_cast<float>(rng() % 2)
                                            : static_cast<float>(rng() % 7);
    }
    MatrixF cpu_grad(rows, k);
    const double cpu_loss = models::LossAndLogitGradient(
        task, ConstMatrixViewF(logits.data(), rows, k), labels, cpu_grad.view());
    auto dl = Upload(logits);
    auto dy = Upload(labels);
    auto dgrad = Poisoned<float>(n);
    auto rowloss = Poisoned<double>(static_cast<std::size_t>(rows));
    auto scratch = Poisoned<double>(kernels::kReduceBlocks);
    auto total = Poisoned<double>(1);
    auto total_f = Poisoned<float>(1);
    CheckCuda(kernels::LaunchLossGradient(static_cast<kernels::Task>(static_cast<int>(task)),
                                          dl.data(), dy.data(), dgrad.data(), rowloss.data(), rows,
                                          k, nullptr));
    CheckCuda(kernels::LaunchSum(rowloss.data(), static_cast<std::size_t>(rows), scratch.data(),
                                 total.data(), total_f.data(), nullptr));
    const auto got = Download(dgrad, n);
    std::vector<double> want(cpu_grad.data(), cpu_grad.data() + n);
    EXPECT_LE(MaxRelError(got, want, 1.0), 1e-5) << models::TaskName(task);
    const double loss = Download(total, 1)[0];
    EXPECT_LE(std::fabs(loss - cpu_loss) / std::max(std::fabs(cpu_loss), 1.0), 1e-5)
        << models::TaskName(task) << " gpu " << loss << " cpu " << cpu_loss;
    EXPECT_EQ(Download(total_f, 1)[0], static_cast<float>(loss));
  }
}

TEST(GpuKernels, SumsAreExactToDoubleRoundingAndDeterministic) {
  ESCALA_REQUIRE_GPU();
  for (std::size_t n : {std::size_t{1}, std::size_t{255}, std::size_t{70001}}) {
    const auto f = Random(n, n);
    std::vector<double> v(f.begin(), f.end());
    auto dv = Upload(v);
    auto scratch = Poisoned<double>(kernels::kReduceBlocks);
    auto out = Poisoned<double>(1);
    CheckCuda(kernels::LaunchSum(dv.data(), n, scratch.data(), out.data(), nullptr, nullptr));
    const double first = Download(out, 1)[0];
    CheckCuda(kernels::LaunchSum(dv.data(), n, scratch.data(), out.data(), nullptr, nullptr));
    const double second = Download(out, 1)[0];
    EXPECT_EQ(first, second);
    double sa = 0;
    for (double x : v) sa += std::fabs(x);
    EXPECT_LE(std::fabs(first - std::accumulate(v.begin(), v.end(), 0.0)) / sa, 1e-12);
    // Squared norm of the scaled values.
    auto dfl = Upload(f);
    CheckCuda(
        kernels::LaunchSquaredNorm(dfl.data(), n, 0.25f, scratch.data(), out.data(), nullptr));
    double sq = 0;
    for (float x : f) sq += static_cast<double>(x * 0.25f) * (x * 0.25f);
    EXPECT_LE(std::fabs(Download(out, 1)[0] - sq) / sq, 1e-12);
  }
}

TEST(GpuKernels, GatherRows) {
  ESCALA_REQUIRE_GPU();
  const int n = 500, d = 33, m = 77;
  const auto x = Random(static_cast<std::size_t>(n) * d, 11);
  const auto labels = Random(static_cast<std::size_t>(n), 12);
  std::vector<std::uint64_t> ids(n);
  std::iota(ids.begin(), ids.end(), std::uint64_t{1000});
  std::vector<std::uint32_t> rows(m);
  std::mt19937 rng(5);
  for (auto& r : rows) r = rng() % n;
  auto dx = Upload(x);
  auto dl = Upload(labels);
  auto dids = Upload(ids);
  auto drows = Upload(rows);
  auto out = Poisoned<float>(static_cast<std::size_t>(m) * d);
  auto lout = Poisoned<float>(m);
  auto iout = Poisoned<std::uint64_t>(m);
  CheckCuda(kernels::LaunchGatherRows(dx.data(), d, drows.data(), m, out.data(), dl.data(),
                                      lout.data(), dids.data(), iout.data(), nullptr));
  const auto got = Download(out, static_cast<std::size_t>(m) * d);
  const auto gl = Download(lout, m);
  const auto gi = Download(iout, m);
  for (int r = 0; r < m; ++r) {
    const auto src = static_cast<std::size_t>(rows[static_cast<std::size_t>(r)]);
    for (int c = 0; c < d; ++c) {
      ASSERT_EQ(got[static_cast<std::size_t>(r) * d + c], x[src * d + c]);
    }
    ASSERT_EQ(gl[static_cast<std::size_t>(r)], labels[src]);
    ASSERT_EQ(gi[static_cast<std::size_t>(r)], ids[src]);
  }
}

TEST(GpuKernels, OptimizerStepsMatchTheCpuOptimizers) {
  ESCALA_REQUIRE_GPU();
  const std::size_t n = 10007;
  const int steps = 4;
  const float inv = 1.0f / 37.0f;
  std::vector<std::uint8_t> mask(n);
  for (std::size_t i = 0; i < n; ++i) mask[i] = i % 5 != 0;  // some "biases"
  auto dmask = Upload(mask);
  std::uint64_t seed = 1234;
  for (const char* name : {"sgd", "momentum", "nesterov", "adam", "adamw"}) {
    for (int variant = 0; variant < 3; ++variant) {
      train::OptimizerConfig c;
      c.name = name;
      c.lr = 0.01f;
      c.weight_decay = variant == 1 && std::string(name) == "adamw" ? 0.1f : 0.0f;
      c.l2 = variant == 1 ? 1e-2f : 0.0f;
      c.l1 = variant == 2 ? 1e-3f : 0.0f;
      const double clip = variant == 2 ? 0.5 : 0.0;
      auto cpu = train::MakeOptimizer(c, n, mask);
      std::vector<float> w = Random(n, seed++);
      auto dw = Upload(w);
      auto dm = Upload(std::vector<float>(n, 0.0f));
      auto dv = Upload(std::vector<float>(n, 0.0f));
      auto scratch = Poisoned<double>(kernels::kReduceBlocks);
      auto sq = Poisoned<double>(1);
      auto loss = Upload(std::vector<float>{1.5f});
      for (int t = 0; t < steps; ++t) {
        const std::vector<float> grad = Random(n, seed++, -3.0f, 3.0f);  // summed over the batch
        // CPU: mean gradient, clip, step.
        std::vector<float> g = grad;
        for (float& v : g) v *= inv;
        train::ClipGradNorm(g, clip);
        cpu->Step(w, g, c.lr);
        // GPU.
        auto dg = Upload(grad);
        kernels::OptimizerStep s;
        s.kind = static_cast<kernels::OptimizerKind>(std::string(name) == "sgd"        ? 0
                                                     : std::string(name) == "momentum" ? 1
                                                     : std::string(name) == "nesterov" ? 2
                                                     : std::string(name) == "adam"     ? 3
                                                                                       : 4);
        s.w = dw.data();
        s.grad = dg.data();
        s.m = dm.data();
        s.v = dv.data();
        s.mask = dmask.data();
        s.n = n;
        s.inv_count = inv;
        if (clip > 0) {
          CheckCuda(
              kernels::LaunchSquaredNorm(dg.data(), n, inv, scratch.data(), sq.data(), nullptr));
          s.squared_norm = sq.data();
          s.clip_norm = clip;
        }
        s.loss = loss.data();
        s.lr = c.lr;
        s.momentum = c.momentum;
        s.beta1 = c.beta1;
        s.beta2 = c.beta2;
        const double tt = t + 1;
        const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), tt));
        const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), tt));
        s.adam_step = c.lr * std::sqrt(c2) / c1;
        s.adam_eps = c.epsilon * std::sqrt(c2);
        s.decay = std::string(name) == "adamw" ? c.lr * c.weight_decay : 0.0f;
        s.l2 = c.l2;
        s.l1_threshold = c.lr * c.l1;
        CheckCuda(kernels::LaunchOptimizerStep(s, nullptr));
      }
      EXPECT_LE(MaxRelError(Download(dw, n), ToDouble(w), 1e-3), 1e-5)
          << name << " variant " << variant;
      if (!cpu->state().empty()) {
        EXPECT_LE(MaxRelError(Download(dm, n), ToDouble(cpu->state()[0]), 1e-3), 1e-5) << name;
      }
    }
  }
}

TEST(GpuKernels, OptimizerSkipsTheUpdateWhenTheLossIsNotFinite) {
  ESCALA_REQUIRE_GPU();
  const std::size_t n = 1000;
  const auto w = Random(n, 77);
  auto dw = Upload(w);
  auto dg = Upload(Random(n, 78));
  auto dm = Upload(std::vector<float>(n, 0.0f));
  auto mask = Upload(std::vector<std::uint8_t>(n, 1));
  auto loss = Upload(std::vector<float>{std::nanf("")});
  kernels::OptimizerStep s;
  s.kind = kernels::OptimizerKind::kMomentum;
  s.w = dw.data();
  s.grad = dg.data();
  s.m = dm.data();
  s.mask = mask.data();
  s.n = n;
  s.loss = loss.data();
  s.lr = 0.1f;
  s.momentum = 0.9f;
  CheckCuda(kernels::LaunchOptimizerStep(s, nullptr));
  EXPECT_EQ(Download(dw, n), w);
  EXPECT_EQ(Download(dm, n), std::vector<float>(n, 0.0f));
}

TEST(GpuKernels, PoolReusesFreedBlocks) {
  ESCALA_REQUIRE_GPU();
  auto& pool = internal::DevicePool::For(0);
  void* first = pool.Allocate(3000);
  pool.Free(first, 3000);
  void* again = pool.Allocate(4000);  // same size class (4 KiB)
  EXPECT_EQ(first, again);
  pool.Free(again, 4000);
  EXPECT_GE(pool.cached_bytes(), std::size_t{4096});
  EXPECT_EQ(internal::DevicePool::RoundUp(3 << 20), std::size_t{3} << 20);
}

}  // namespace
}  // namespace escala::gpu
