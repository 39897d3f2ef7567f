#include "kernels/kernels.h"

namespace escala::gpu::kernels {
namespace {

__global__ void VectorAddKernel(const float* __restrict__ a, const float* __restrict__ b,
                                float* __restrict__ out, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    out[i] = a[i] + b[i];
  }
}

}  // namespace

cudaError_t LaunchVectorAdd(const float* a, const float* b, float* out, std::size_t n,
                            cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const std::size_t wanted = (n + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(wanted < 65535 ? wanted : 65535);
  VectorAddKernel<<<blocks, kThreads, 0, stream>>>(a, b, out, n);
  return cudaGetLastError();
}

}  // namespace escala::gpu::kernels
