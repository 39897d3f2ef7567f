#include "cublas_library.h"

#include <string>

#include <fmt/format.h>

#include "escala/core/error.h"
#include "runtime_library.h"

namespace escala::gpu::internal {

namespace {

CublasLibrary Load() {
  std::string path;
  void* handle = OpenRuntimeLibrary(
      "ESCALA_CUBLAS_LIBRARY", fmt::format("libcublas.so.{}", CUBLAS_VER_MAJOR),
      fmt::format("install the CUDA {} toolkit's cuBLAS", CUBLAS_VER_MAJOR), &path);
  CublasLibrary lib;
  std::string missing;
  Resolve(handle, "cublasCreate_v2", &lib.Create, &missing);
  Resolve(handle, "cublasDestroy_v2", &lib.Destroy, &missing);
  Resolve(handle, "cublasSetStream_v2", &lib.SetStream, &missing);
  Resolve(handle, "cublasSetMathMode", &lib.SetMathMode, &missing);
  Resolve(handle, "cublasSetPointerMode_v2", &lib.SetPointerMode, &missing);
  Resolve(handle, "cublasSetWorkspace_v2", &lib.SetWorkspace, &missing);
  Resolve(handle, "cublasGemmEx", &lib.GemmEx, &missing);
  Resolve(handle, "cublasSgemv_v2", &lib.Sgemv, &missing);
  Resolve(handle, "cublasGetStatusName", &lib.GetStatusName, &missing);
  Resolve(handle, "cublasGetStatusString", &lib.GetStatusString, &missing);
  ESCALA_CHECK(missing.empty(), kUnavailable, "{} lacks {}: cuBLAS {} is needed", path, missing,
               CUBLAS_VER_MAJOR);
  return lib;
}

}  // namespace

const CublasLibrary& CublasLibrary::Get() {
  return LoadOnce(&Load);
}

}  // namespace escala::gpu::internal
