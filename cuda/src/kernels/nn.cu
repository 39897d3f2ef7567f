// Layer, loss and data-movement kernels. See kernels.h for what each computes; the formulas are
// the CPU reference's (src/models/mlp.cc, src/models/model.cc), kept in the same order.
#include <cfloat>

#include "kernels/common.cuh"
#include "kernels/kernels.h"

namespace escala::gpu::kernels {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

__device__ __forceinline__ float Activate(Act act, float z) {
  switch (act) {
    case Act::kReLU:
      return fmaxf(z, 0.0f);
    case Act::kTanh:
      return tanhf(z);
    case Act::kSigmoid:
      return 1.0f / (1.0f + expf(-z));
    case Act::kGELU:
      return 0.5f * z * (1.0f + erff(z * kInvSqrt2));
    case Act::kIdentity:
    default:
      return z;
  }
}

// act'(z), from z alone (the CPU uses the stored act(z) where that suffices; same values).
__device__ __forceinline__ float Derivative(Act act, float z) {
  switch (act) {
    case Act::kReLU:
      return z > 0.0f ? 1.0f : 0.0f;
    case Act::kTanh: {
      const float a = tanhf(z);
      return 1.0f - a * a;
    }
    case Act::kSigmoid: {
      const float a = 1.0f / (1.0f + expf(-z));
      return a * (1.0f - a);
    }
    case Act::kGELU:
      return 0.5f * (1.0f + erff(z * kInvSqrt2)) + z * kInvSqrt2Pi * expf(-0.5f * (z * z));
    case Act::kIdentity:
    default:
      return 1.0f;
  }
}

__device__ __forceinline__ float Mask(const Dropout& d, const std::uint64_t* row_ids, std::size_t i,
                                      std::size_t j) {
  if (!d.enabled) return 1.0f;
  const std::uint64_t row = Mix64(d.base ^ row_ids[i]);
  return Mix64(row + static_cast<std::uint64_t>(j)) < d.threshold ? 0.0f : d.scale;
}

// The CPU's stable sigmoid (model.cc): never evaluates exp of a large positive number.
__device__ __forceinline__ float StableSigmoid(float z) {
  if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
  const float e = expf(z);
  return e / (1.0f + e);
}

__global__ void VectorAddKernel(const float* __restrict__ a, const float* __restrict__ b,
                                float* __restrict__ out, std::size_t n) {
  ESCALA_GRID_STRIDE(i, n) {
    out[i] = a[i] + b[i];
  }
}

__global__ void FillKernel(float* p, std::size_t n, float value) {
  ESCALA_GRID_STRIDE(i, n) {
    p[i] = value;
  }
}

__global__ void BiasActivationKernel(float* __restrict__ z, const float* __restrict__ bias,
                                     float* __restrict__ y, std::size_t rows, std::size_t cols,
                                     Act act, const std::uint64_t* __restrict__ row_ids,
                                     Dropout dropout) {
  ESCALA_GRID_STRIDE(k, rows * cols) {
    const std::size_t i = k / cols;
    const std::size_t j = k - i * cols;
    const float zk = z[k] + bias[j];
    z[k] = zk;
    y[k] = Activate(act, zk) * Mask(dropout, row_ids, i, j);
  }
}

__global__ void AddBiasKernel(float* __restrict__ z, const float* __restrict__ bias,
                              std::size_t rows, std::size_t cols) {
  ESCALA_GRID_STRIDE(k, rows * cols) {
    z[k] = z[k] + bias[k % cols];
  }
}

__global__ void ActivationBackwardKernel(const float* dy, const float* __restrict__ z, float* dz,
                                         std::size_t rows, std::size_t cols, Act act,
                                         const std::uint64_t* __restrict__ row_ids,
                                         Dropout dropout) {
  ESCALA_GRID_STRIDE(k, rows * cols) {
    const std::size_t i = k / cols;
    const std::size_t j = k - i * cols;
    float d = dy[k];
    if (dropout.enabled) d = d * Mask(dropout, row_ids, i, j);
    dz[k] = d * Derivative(act, z[k]);
  }
}

// One thread per row.
__global__ void LossGradientKernel(Task task, const float* logits, const float* __restrict__ labels,
                                   float* dlogits, double* __restrict__ row_loss, std::size_t rows,
                                   std::size_t cols) {
  ESCALA_GRID_STRIDE(i, rows) {
    const float y = labels[i];
    switch (task) {
      case Task::kRegression: {
        const float d = logits[i] - y;
        dlogits[i] = d;
        row_loss[i] = 0.5 * static_cast<double>(d) * d;
        break;
      }
      case Task::kBinary: {
        const float z = logits[i];
        dlogits[i] = StableSigmoid(z) - y;
        const float l = fmaxf(z, 0.0f) - z * y + log1pf(expf(-fabsf(z)));
        row_loss[i] = static_cast<double>(l);
        break;
      }
      case Task::kMulticlass: {
        // logits and dlogits may alias: read what the loss needs before overwriting.
        const float* zr = logits + i * cols;
        float* g = dlogits + i * cols;
        float m = -FLT_MAX;
        for (std::size_t j = 0; j < cols; ++j) m = fmaxf(m, zr[j]);
        const auto label = static_cast<std::size_t>(y);
        const float zy = zr[label];
        float sum = 0.0f;
        for (std::size_t j = 0; j < cols; ++j) {
          const float e = expf(zr[j] - m);
          g[j] = e;
          sum += e;
        }
        row_loss[i] = static_cast<double>(m) + log(static_cast<double>(sum)) - zy;
        const float inv = 1.0f / sum;
        for (std::size_t j = 0; j < cols; ++j) g[j] *= inv;
        g[label] -= 1.0f;
        break;
      }
    }
  }
}

__global__ void GatherRowsKernel(const float* __restrict__ x, std::size_t cols,
                                 const std::uint32_t* __restrict__ rows, std::size_t n,
                                 float* __restrict__ out, const float* __restrict__ labels,
                                 float* __restrict__ labels_out,
                                 const std::uint64_t* __restrict__ ids,
                                 std::uint64_t* __restrict__ ids_out) {
  ESCALA_GRID_STRIDE(k, n * cols) {
    const std::size_t r = k / cols;
    const std::size_t c = k - r * cols;
    out[k] = x[static_cast<std::size_t>(rows[r]) * cols + c];
  }
  ESCALA_GRID_STRIDE(r, n) {
    if (labels_out != nullptr) labels_out[r] = labels[rows[r]];
    if (ids_out != nullptr) ids_out[r] = ids[rows[r]];
  }
}

}  // namespace

cudaError_t LaunchVectorAdd(const float* a, const float* b, float* out, std::size_t n,
                            cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  VectorAddKernel<<<BlocksFor(n), kThreads, 0, stream>>>(a, b, out, n);
  return cudaGetLastError();
}

cudaError_t LaunchFill(float* p, std::size_t n, float value, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FillKernel<<<BlocksFor(n), kThreads, 0, stream>>>(p, n, value);
  return cudaGetLastError();
}

cudaError_t LaunchBiasActivation(float* z, const float* bias, float* y, int rows, int cols, Act act,
                                 const std::uint64_t* row_ids, Dropout dropout,
                                 cudaStream_t stream) {
  const auto n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  if (n == 0) return cudaSuccess;
  BiasActivationKernel<<<BlocksFor(n), kThreads, 0, stream>>>(
      z, bias, y, static_cast<std::size_t>(rows), static_cast<std::size_t>(cols), act, row_ids,
      dropout);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(float* z, const float* bias, int rows, int cols, cudaStream_t stream) {
  const auto n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  if (n == 0) return cudaSuccess;
  AddBiasKernel<<<BlocksFor(n), kThreads, 0, stream>>>(z, bias, static_cast<std::size_t>(rows),
                                                       static_cast<std::size_t>(cols));
  return cudaGetLastError();
}

cudaError_t LaunchActivationBackward(const float* dy, const float* z, float* dz, int rows, int cols,
                                     Act act, const std::uint64_t* row_ids, Dropout dropout,
                                     cudaStream_t stream) {
  const auto n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  if (n == 0) return cudaSuccess;
  ActivationBackwardKernel<<<BlocksFor(n), kThreads, 0, stream>>>(
      dy, z, dz, static_cast<std::size_t>(rows), static_cast<std::size_t>(cols), act, row_ids,
      dropout);
  return cudaGetLastError();
}

cudaError_t LaunchLossGradient(Task task, const float* logits, const float* labels, float* dlogits,
                               double* row_loss, int rows, int cols, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const auto n = static_cast<std::size_t>(rows);
  LossGradientKernel<<<BlocksFor(n), kThreads, 0, stream>>>(task, logits, labels, dlogits, row_loss,
                                                            n, static_cast<std::size_t>(cols));
  return cudaGetLastError();
}

cudaError_t LaunchGatherRows(const float* x, int cols, const std::uint32_t* rows, int n, float* out,
                             const float* labels, float* labels_out, const std::uint64_t* ids,
                             std::uint64_t* ids_out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const auto total = static_cast<std::size_t>(n) * static_cast<std::size_t>(cols);
  GatherRowsKernel<<<BlocksFor(total), kThreads, 0, stream>>>(
      x, static_cast<std::size_t>(cols), rows, static_cast<std::size_t>(n), out, labels, labels_out,
      ids, ids_out);
  return cudaGetLastError();
}

}  // namespace escala::gpu::kernels
