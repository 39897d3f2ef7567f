// The CUDA backend's run-time libraries: cuBLAS is loaded on first use, not linked, so that
// binaries with the backend start without mapping it (runs without a GPU).
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "cublas_library.h"
#include "escala/core/error.h"

namespace escala::gpu::internal {
namespace {

TEST(GpuLibraries, CublasLoadsAtRunTimeWhereInstalled) {
  const CublasLibrary* lib = nullptr;
  try {
    lib = &CublasLibrary::Get();
  } catch (const Error& e) {
    GTEST_SKIP() << "cuBLAS is not installed here: " << e.what();
  }
  EXPECT_NE(lib->Create, nullptr);
  EXPECT_NE(lib->GemmEx, nullptr);
  EXPECT_STREQ(lib->GetStatusName(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
}

}  // namespace
}  // namespace escala::gpu::internal
