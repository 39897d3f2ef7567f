// Shared by the libraries the CUDA backend loads at run time (cuBLAS, NCCL): open one by an
// environment variable or its default name, resolve its symbols, and keep the result for the
// life of the process (a failure is remembered and reported again to each caller).
#ifndef ESCALA_CUDA_SRC_RUNTIME_LIBRARY_H_
#define ESCALA_CUDA_SRC_RUNTIME_LIBRARY_H_

#include <dlfcn.h>
#include <mutex>
#include <string>
#include <string_view>

#include "escala/core/error.h"

namespace escala::gpu::internal {

// dlopen of $env (when set) or `fallback`; sets *path to what was tried. Throws kUnavailable
// with dlerror() and `hint` (how to install it or point to it) when it cannot be loaded.
void* OpenRuntimeLibrary(const char* env, const std::string& fallback, std::string_view hint,
                         std::string* path);

// *fn = the symbol `name`, or appends the name to *missing.
template <typename F>
void Resolve(void* handle, const char* name, F* fn, std::string* missing) {
  *fn = reinterpret_cast<F>(dlsym(handle, name));
  if (*fn == nullptr) *missing += std::string(missing->empty() ? "" : ", ") + name;
}

// The process-wide T made by `load` on first use; a load that threw is rethrown (same code and
// message) to every later caller.
template <typename T>
const T& LoadOnce(T (*load)()) {
  static std::once_flag once;
  static T* value = nullptr;
  static std::string error;
  static ErrorCode code = ErrorCode::kUnavailable;
  std::call_once(once, [load] {
    try {
      value = new T(load());
    } catch (const Error& e) {
      error = e.message();
      code = e.code();
    }
  });
  if (value == nullptr) Throw(code, "{}", error);
  return *value;
}

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_RUNTIME_LIBRARY_H_
