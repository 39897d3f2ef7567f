// Reductions and the fused optimizer step. See kernels.h; the update is src/train/optimizer.cc's,
// formula by formula.
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/kernels.h"

namespace escala::gpu::kernels {
namespace {

constexpr int kReduceThreads = 256;

// Sums one double per thread over the block; thread 0 returns the block's total.
__device__ double BlockSum(double v) {
  __shared__ double shared[kReduceThreads];
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  return shared[0];
}

// Pass 1: block b sums elements b*T + t, (b + B)*T + t, ... in a fixed pattern.
template <typename F>
__global__ void PartialSumKernel(std::size_t n, double* __restrict__ partial, F value) {
  double acc = 0.0;
  ESCALA_GRID_STRIDE(i, n) {
    acc += value(i);
  }
  const double total = BlockSum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2: one block sums the partials.
__global__ void FinalSumKernel(const double* __restrict__ partial, double* out, float* out_float) {
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < kReduceBlocks; i += kReduceThreads) {
    acc += partial[i];
  }
  const double total = BlockSum(acc);
  if (threadIdx.x == 0) {
    *out = total;
    if (out_float != nullptr) *out_float = static_cast<float>(total);
  }
}

struct LoadDouble {
  const double* v;
  __device__ double operator()(std::size_t i) const { return v[i]; }
};

struct ScaledSquare {
  const float* v;
  float scale;
  __device__ double operator()(std::size_t i) const {
    const float g = v[i] * scale;
    return static_cast<double>(g) * g;
  }
};

__global__ void OptimizerKernel(OptimizerStep s) {
  if (s.loss != nullptr && !isfinite(*s.loss)) return;  // the trainer stops; keep the last state
  float clip = 1.0f;
  bool clipping = false;
  if (s.squared_norm != nullptr && s.clip_norm > 0) {
    const double norm = sqrt(*s.squared_norm);
    if (norm > s.clip_norm) {
      clip = static_cast<float>(s.clip_norm / norm);
      clipping = true;
    }
  }
  ESCALA_GRID_STRIDE(i, s.n) {
    float gi = s.grad[i] * s.inv_count;
    if (clipping) gi *= clip;
    float w = s.w[i];
    const bool penalised = s.mask[i] != 0;
    const float g = penalised ? gi + s.l2 * w : gi;
    switch (s.kind) {
      case OptimizerKind::kSgd:
        w -= s.lr * g;
        break;
      case OptimizerKind::kMomentum:
      case OptimizerKind::kNesterov: {
        const float v = s.momentum * s.m[i] + g;
        s.m[i] = v;
        w -= s.lr * (s.kind == OptimizerKind::kNesterov ? g + s.momentum * v : v);
        break;
      }
      case OptimizerKind::kAdam:
      case OptimizerKind::kAdamW: {
        const float m = s.beta1 * s.m[i] + (1 - s.beta1) * g;
        const float v = s.beta2 * s.v[i] + (1 - s.beta2) * g * g;
        s.m[i] = m;
        s.v[i] = v;
        if (s.decay > 0 && penalised) w -= s.decay * w;
        w -= s.adam_step * m / (sqrtf(v) + s.adam_eps);
        break;
      }
    }
    if (s.l1_threshold > 0 && penalised) {
      const float a = fabsf(w) - s.l1_threshold;
      w = a > 0 ? copysignf(a, w) : 0.0f;
    }
    s.w[i] = w;
  }
}

}  // namespace

cudaError_t LaunchSum(const double* values, std::size_t n, double* scratch, double* out,
                      float* out_float, cudaStream_t stream) {
  PartialSumKernel<<<kReduceBlocks, kReduceThreads, 0, stream>>>(n, scratch, LoadDouble{values});
  FinalSumKernel<<<1, kReduceThreads, 0, stream>>>(scratch, out, out_float);
  return cudaGetLastError();
}

cudaError_t LaunchSquaredNorm(const float* values, std::size_t n, float scale, double* scratch,
                              double* out, cudaStream_t stream) {
  PartialSumKernel<<<kReduceBlocks, kReduceThreads, 0, stream>>>(n, scratch,
                                                                 ScaledSquare{values, scale});
  FinalSumKernel<<<1, kReduceThreads, 0, stream>>>(scratch, out, nullptr);
  return cudaGetLastError();
}

cudaError_t LaunchOptimizerStep(const OptimizerStep& step, cudaStream_t stream) {
  if (step.n == 0) return cudaSuccess;
  OptimizerKernel<<<BlocksFor(step.n), kThreads, 0, stream>>>(step);
  return cudaGetLastError();
}

}  // namespace escala::gpu::kernels
