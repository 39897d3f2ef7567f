// cuBLAS, loaded at run time (dlopen of libcublas.so.<major of the headers>, or the file named by
// ESCALA_CUBLAS_LIBRARY) on the first GEMM, as NCCL is: a binary that links the CUDA backend
// does not map cuBLAS and cuBLASLt (hundreds of MB) until a GPU is asked for, so CPU commands
// start in milliseconds. The declarations come from the cublas_v2.h escala was compiled against.
#ifndef ESCALA_CUDA_SRC_CUBLAS_LIBRARY_H_
#define ESCALA_CUDA_SRC_CUBLAS_LIBRARY_H_

#include <cublas_v2.h>

namespace escala::gpu::internal {

struct CublasLibrary {
  // The process-wide library, loaded on first use. Throws kUnavailable saying what was tried.
  static const CublasLibrary& Get();

  decltype(&cublasCreate_v2) Create = nullptr;
  decltype(&cublasDestroy_v2) Destroy = nullptr;
  decltype(&cublasSetStream_v2) SetStream = nullptr;
  decltype(&cublasSetMathMode) SetMathMode = nullptr;
  decltype(&cublasSetPointerMode_v2) SetPointerMode = nullptr;
  decltype(&cublasSetWorkspace_v2) SetWorkspace = nullptr;
  // The library's cublasGemmEx (C++ also sees an inline overload taking a cudaDataType).
  using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                      int, int, const void*, const void*, cudaDataType, int,
                                      const void*, cudaDataType, int, const void*, void*,
                                      cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  GemmExFn GemmEx = nullptr;
  decltype(&cublasSgemv_v2) Sgemv = nullptr;
  decltype(&cublasGetStatusName) GetStatusName = nullptr;
  decltype(&cublasGetStatusString) GetStatusString = nullptr;
};

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_CUBLAS_LIBRARY_H_
