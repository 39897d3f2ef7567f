#include "cuda_check.h"

namespace escala::gpu::internal {

ErrorCode CudaErrorCode(cudaError_t err) {
  switch (err) {
    case cudaErrorMemoryAllocation:
      return ErrorCode::kResourceExhausted;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
      return ErrorCode::kUnavailable;
    case cudaErrorInvalidDevice:
      return ErrorCode::kNotFound;
    default:
      return ErrorCode::kInternal;
  }
}

void ThrowCuda(cudaError_t err, const char* call, const char* file, int line) {
  Throw(CudaErrorCode(err), "CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err),
        cudaGetErrorString(err), call, file, line);
}

void ThrowCublas(cublasStatus_t status, const char* call, const char* file, int line) {
  const ErrorCode code = status == CUBLAS_STATUS_ALLOC_FAILED      ? ErrorCode::kResourceExhausted
                         : status == CUBLAS_STATUS_NOT_INITIALIZED ? ErrorCode::kUnavailable
                                                                   : ErrorCode::kInternal;
  Throw(code, "cuBLAS error {} ({}) in {} at {}:{}", cublasGetStatusName(status),
        cublasGetStatusString(status), call, file, line);
}

void ThrowNccl(int code, const char* message, const char* call, const char* file, int line) {
  Throw(ErrorCode::kInternal, "NCCL error {} ({}) in {} at {}:{}", code,
        message != nullptr ? message : "?", call, file, line);
}

}  // namespace escala::gpu::internal
