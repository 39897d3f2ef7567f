// Launchers for escala's CUDA kernels. Plain C++ declarations (no CUDA syntax) so that host code
// compiled by the C++ compiler can call them. Each launcher enqueues on `stream` and returns the
// launch status; callers check it with CUDA_CHECK.
#ifndef ESCALA_CUDA_SRC_KERNELS_KERNELS_H_
#define ESCALA_CUDA_SRC_KERNELS_KERNELS_H_

#include <cstddef>
#include <cuda_runtime.h>

namespace escala::gpu::kernels {

// out[i] = a[i] + b[i], device pointers.
cudaError_t LaunchVectorAdd(const float* a, const float* b, float* out, std::size_t n,
                            cudaStream_t stream);

}  // namespace escala::gpu::kernels

#endif  // ESCALA_CUDA_SRC_KERNELS_KERNELS_H_
