// The one family of CUDA/cuBLAS/NCCL error checks. Each turns a failure into escala::Error with
// the failing call, file and line; nothing in the CUDA backend ignores a return code.
//
// Host code only (compiled by the C++ compiler): .cu files hold kernels and launchers that
// return cudaError_t, and their callers check it here. This keeps fmt's compile-time format
// checks, which nvcc's front end cannot evaluate, out of nvcc.
#ifndef ESCALA_CUDA_SRC_CUDA_CHECK_H_
#define ESCALA_CUDA_SRC_CUDA_CHECK_H_

#include <cuda_runtime.h>

#include "escala/core/error.h"

namespace escala::gpu::internal {

[[noreturn]] inline void ThrowCuda(cudaError_t err, const char* call, const char* file, int line) {
  const ErrorCode code = (err == cudaErrorMemoryAllocation) ? ErrorCode::kResourceExhausted
                         : (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver)
                             ? ErrorCode::kUnavailable
                             : ErrorCode::kInternal;
  Throw(code, "CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err), cudaGetErrorString(err),
        call, file, line);
}

}  // namespace escala::gpu::internal

#define CUDA_CHECK(call)                                                               \
  do {                                                                                 \
    const cudaError_t escala_cuda_err_ = (call);                                       \
    if (escala_cuda_err_ != cudaSuccess) [[unlikely]] {                                \
      ::escala::gpu::internal::ThrowCuda(escala_cuda_err_, #call, __FILE__, __LINE__); \
    }                                                                                  \
  } while (false)

// After a kernel launch: catches launch-configuration errors immediately.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#endif  // ESCALA_CUDA_SRC_CUDA_CHECK_H_
