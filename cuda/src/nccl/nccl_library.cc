#include "nccl/nccl_library.h"

#include <string>

#include "escala/core/error.h"
#include "runtime_library.h"

namespace escala::gpu::internal {

namespace {

constexpr int kMinVersion = 21800;

NcclLibrary Load() {
  std::string path;
  void* handle =
      OpenRuntimeLibrary("ESCALA_NCCL_LIBRARY", "libnccl.so.2", "install NCCL 2.18+", &path);
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
  return LoadOnce(&Load);
}

}  // namespace escala::gpu::internal
