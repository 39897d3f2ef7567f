// Device helpers shared by the kernel translation units (nvcc only).
#ifndef ESCALA_CUDA_SRC_KERNELS_COMMON_CUH_
#define ESCALA_CUDA_SRC_KERNELS_COMMON_CUH_

#include <cstddef>
#include <cstdint>

namespace escala::gpu::kernels {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements.
inline int BlocksFor(std::size_t n) {
  const std::size_t wanted = (n + kThreads - 1) / kThreads;
  constexpr std::size_t kMaxBlocks = 65535;
  return static_cast<int>(wanted < kMaxBlocks ? (wanted > 0 ? wanted : 1) : kMaxBlocks);
}

// The splitmix64 finaliser, as escala::Mix64 (core/random.h).
__device__ __forceinline__ std::uint64_t Mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

#define ESCALA_GRID_STRIDE(i, n)                                                                 \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)

}  // namespace escala::gpu::kernels

#endif  // ESCALA_CUDA_SRC_KERNELS_COMMON_CUH_
