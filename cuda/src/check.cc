#include "cublas_library.h"
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
  // Only reached once cuBLAS is loaded (a handle exists), so its names are at hand.
  const CublasLibrary& lib = CublasLibrary::Get();
  Throw(code, "cuBLAS error {} ({}) in {} at {}:{}", lib.GetStatusName(status),
        lib.GetStatusString(status), call, file, line);
}

void ThrowNccl(int code, const char* message, const char* call, const char* file, int line) {
  Throw(ErrorCode::kInternal, "NCCL error {} ({}) in {} at {}:{}", code,
        message != nullptr ? message : "?", call, file, line);
}

}  // namespace escala::gpu::internal
