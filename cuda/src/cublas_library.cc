#include "cublas_library.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "escala/core/error.h"

namespace escala::gpu::internal {

namespace {

template <typename F>
void Resolve(void* handle, const char* name, F* fn, std::string* missing) {
  *fn = reinterpret_cast<F>(dlsym(handle, name));
  if (*fn == nullptr) *missing += std::string(missing->empty() ? "" : ", ") + name;
}

CublasLibrary Load() {
  const char* env = std::getenv("ESCALA_CUBLAS_LIBRARY");
  const std::string path = env != nullptr && *env != '\0'
                               ? std::string(env)
                               : fmt::format("libcublas.so.{}", CUBLAS_VER_MAJOR);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    Throw(ErrorCode::kUnavailable,
          "cannot load cuBLAS ({}: {}); install the CUDA {} toolkit's cuBLAS or set "
          "ESCALA_CUBLAS_LIBRARY to its libcublas.so",
          path, why != nullptr ? why : "not found", CUBLAS_VER_MAJOR);
  }
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
  return lib;  // the handle stays open for the life of the process
}

}  // namespace

const CublasLibrary& CublasLibrary::Get() {
  static std::once_flag once;
  static CublasLibrary* lib = nullptr;
  static std::string error;
  std::call_once(once, [] {
    try {
      lib = new CublasLibrary(Load());
    } catch (const Error& e) {
      error = e.message();
    }
  });
  if (lib == nullptr) Throw(ErrorCode::kUnavailable, "{}", error);
  return *lib;
}

}  // namespace escala::gpu::internal
