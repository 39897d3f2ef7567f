#include "nccl/nccl_library.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <string>

#include "escala/core/error.h"

namespace escala::gpu::internal {

namespace {

constexpr int kMinVersion = 21800;

template <typename F>
void Resolve(void* handle, const char* name, F* fn, std::string* missing) {
  *fn = reinterpret_cast<F>(dlsym(handle, name));
  if (*fn == nullptr) *missing += std::string(missing->empty() ? "" : ", ") + name;
}

NcclLibrary Load() {
  const char* env = std::getenv("ESCALA_NCCL_LIBRARY");
  const std::string path = env != nullptr && *env != '\0' ? env : "libnccl.so.2";
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    Throw(ErrorCode::kUnavailable,
          "cannot load NCCL ({}: {}); install NCCL 2.18+ or set ESCALA_NCCL_LIBRARY to its "
          "libnccl.so",
          path, why != nullptr ? why : "not found");
  }
  NcclLibrary lib;
  std::string missing;
  Resolve(handle, "ncclGetVersion", &lib.GetVersion, &missing);
  Resolve(handle, "ncclGetUniqueId", &lib.GetUniqueId, &missing);
  Resolve(handle, "ncclCommInitRankConfig", &lib.CommInitRankConfig, &missing);
  Resolve(handle, "ncclCommGetAsyncError", &lib.CommGetAsyncError, &missing);
  Resolve(handle, "ncclCommAbort", &lib.CommAbort, &missing);
  Resolve(handle, "ncclCommFinalize", &lib.CommFinalize, &missing);
  Resolve(handle, "ncclCommDestroy", &lib.CommDestroy, &missing);
  Resolve(handle, "ncclAllReduce", &lib.AllReduce, &missing);
  Resolve(handle, "ncclBroadcast", &lib.Broadcast, &missing);
  Resolve(handle, "ncclAllGather", &lib.AllGather, &missing);
  Resolve(handle, "ncclGetErrorString", &lib.GetErrorString, &missing);
  Resolve(handle, "ncclGetLastError", &lib.GetLastError, &missing);
  ESCALA_CHECK(missing.empty(), kUnavailable, "{} lacks {}: NCCL 2.18+ is needed", path, missing);
  ESCALA_CHECK(lib.GetVersion(&lib.version) == ncclSuccess, kUnavailable,
               "{}: ncclGetVersion failed", path);
  // Non-blocking initialisation, ncclCommFinalize and ncclAvg are all there from 2.18 on; the
  // config struct is versioned, so a library older than our headers reads its own fields.
  ESCALA_CHECK(lib.version >= kMinVersion, kUnavailable,
               "{} is NCCL version code {}; escala needs 2.18 or newer", path, lib.version);
  return lib;  // the handle stays open for the life of the process
}

}  // namespace

const NcclLibrary& NcclLibrary::Get() {
  static std::once_flag once;
  static NcclLibrary* lib = nullptr;
  static std::string error;
  static ErrorCode code = ErrorCode::kUnavailable;
  std::call_once(once, [] {
    try {
      lib = new NcclLibrary(Load());
    } catch (const Error& e) {
      error = e.message();
      code = e.code();
    }
  });
  if (lib == nullptr) Throw(code, "{}", error);
  return *lib;
}

}  // namespace escala::gpu::internal
