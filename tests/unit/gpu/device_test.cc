#include "escala/gpu/device.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "escala/config.h"
#include "escala/core/error.h"

namespace escala::gpu {
namespace {

TEST(GpuDevice, BuildFlagMatchesConfig) {
  EXPECT_EQ(BuiltWithCuda(), ESCALA_WITH_CUDA == 1);
}

TEST(GpuDevice, CpuBuildExplainsItself) {
  if (BuiltWithCuda()) GTEST_SKIP() << "CUDA build";
  EXPECT_EQ(DeviceCount(), 0);
  try {
    RequireDevice("--device cuda");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("built without CUDA"), std::string::npos);
  }
}

TEST(GpuDevice, VectorAddMatchesCpuReference) {
  if (DeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  const std::size_t n = 1'000'003;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-100.0f, 100.0f);
  std::vector<float> a(n), b(n), out(n, std::numeric_limits<float>::quiet_NaN());
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = dist(rng);
    b[i] = dist(rng);
  }
  VectorAdd(a.data(), b.data(), out.data(), n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]) << i;
}

TEST(GpuDevice, MissingDeviceIsNotFound) {
  if (!BuiltWithCuda()) GTEST_SKIP() << "CPU build";
  EXPECT_THROW(GetDeviceInfo(DeviceCount() + 3), Error);
}

}  // namespace
}  // namespace escala::gpu
