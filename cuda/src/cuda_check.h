// The one family of CUDA/cuBLAS/NCCL error checks. Each turns a failure into escala::Error with
// the failing call, file and line; nothing in the CUDA backend ignores a return code.
//
// Host code only (compiled by the C++ compiler): .cu files hold kernels and launchers that
// return cudaError_t, and their callers check it here. This keeps fmt's compile-time format
// checks, which nvcc's front end cannot evaluate, out of nvcc.
//
// NCCL is loaded at run time (nccl/nccl_library.h), so NCCL_CHECK takes the library's error
// string with the result: NCCL_CHECK(lib, lib.AllReduce(...)).
#ifndef ESCALA_CUDA_SRC_CUDA_CHECK_H_
#define ESCALA_CUDA_SRC_CUDA_CHECK_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "escala/core/error.h"

namespace escala::gpu::internal {

[[noreturn]] void ThrowCuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void ThrowCublas(cublasStatus_t status, const char* call, const char* file, int line);
// `message` is ncclGetErrorString's text; `code` the ncclResult_t value.
[[noreturn]] void ThrowNccl(int code, const char* message, const char* call, const char* file,
                            int line);

// The error code escala uses for a CUDA runtime error.
ErrorCode CudaErrorCode(cudaError_t err);

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

#define CUBLAS_CHECK(call)                                                                    \
  do {                                                                                        \
    const cublasStatus_t escala_cublas_status_ = (call);                                      \
    if (escala_cublas_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]] {                        \
      ::escala::gpu::internal::ThrowCublas(escala_cublas_status_, #call, __FILE__, __LINE__); \
    }                                                                                         \
  } while (false)

// `lib` is an internal::NcclLibrary; the result 0 is ncclSuccess.
#define NCCL_CHECK(lib, call)                                                                     \
  do {                                                                                            \
    const auto escala_nccl_result_ = (call);                                                      \
    if (static_cast<int>(escala_nccl_result_) != 0) [[unlikely]] {                                \
      ::escala::gpu::internal::ThrowNccl(static_cast<int>(escala_nccl_result_),                   \
                                         (lib).ErrorString(escala_nccl_result_), #call, __FILE__, \
                                         __LINE__);                                               \
    }                                                                                             \
  } while (false)

#endif  // ESCALA_CUDA_SRC_CUDA_CHECK_H_
