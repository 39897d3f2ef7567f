// NCCL, loaded at run time (dlopen of libnccl.so.2, or the file named by ESCALA_NCCL_LIBRARY), so
// that escala's binaries start and train on one GPU where NCCL is not installed; only building an
// NCCL communicator needs it. The declarations come from the nccl.h escala was compiled against;
// the library found at run time must be NCCL 2.18 or newer (checked).
#ifndef ESCALA_CUDA_SRC_NCCL_NCCL_LIBRARY_H_
#define ESCALA_CUDA_SRC_NCCL_NCCL_LIBRARY_H_

#include <nccl.h>

namespace escala::gpu::internal {

struct NcclLibrary {
  // The process-wide library, loaded on first use. Throws kUnavailable saying what was tried.
  static const NcclLibrary& Get();

  const char* ErrorString(ncclResult_t result) const {
    return GetErrorString != nullptr ? GetErrorString(result) : "unknown NCCL error";
  }

  int version = 0;
  decltype(&ncclGetVersion) GetVersion = nullptr;
  decltype(&ncclGetUniqueId) GetUniqueId = nullptr;
  decltype(&ncclCommInitRankConfig) CommInitRankConfig = nullptr;
  decltype(&ncclCommGetAsyncError) CommGetAsyncError = nullptr;
  decltype(&ncclCommAbort) CommAbort = nullptr;
  decltype(&ncclCommFinalize) CommFinalize = nullptr;
  decltype(&ncclCommDestroy) CommDestroy = nullptr;
  decltype(&ncclAllReduce) AllReduce = nullptr;
  decltype(&ncclBroadcast) Broadcast = nullptr;
  decltype(&ncclAllGather) AllGather = nullptr;
  decltype(&ncclGetErrorString) GetErrorString = nullptr;
  decltype(&ncclGetLastError) GetLastError = nullptr;
};

}  // namespace escala::gpu::internal

#endif  // ESCALA_CUDA_SRC_NCCL_NCCL_LIBRARY_H_
