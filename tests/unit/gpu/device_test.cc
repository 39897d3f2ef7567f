#include "escala/gpu/device.h"

#include <functional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "escala/config.h"
#include "escala/core/error.h"
#include "escala/gpu/nccl.h"
#include "escala/gpu/train.h"

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

TEST(GpuDevice, DeviceSpecs) {
  EXPECT_FALSE(ParseDeviceSpec("cpu").cuda);
  EXPECT_TRUE(ParseDeviceSpec("cuda").cuda);
  EXPECT_EQ(ParseDeviceSpec("cuda").index, -1);
  EXPECT_EQ(ParseDeviceSpec("cuda:3").index, 3);
  for (const char* bad : {"gpu:1", "cuda:", "cuda:-1", "cuda:1x", "tpu", ""}) {
    try {
      ParseDeviceSpec(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_EQ(ParsePrecision("tf32"), Precision::kTf32);
  EXPECT_THROW(ParsePrecision("fp16"), Error);
}

TEST(GpuDevice, LocalRankPicksTheDevice) {
  const DeviceSpec by_rank = ParseDeviceSpec("cuda");
  EXPECT_EQ(ResolveDeviceIndex(by_rank, 2, 4), 2);
  // One visible device (CUDA_VISIBLE_DEVICES per process): every local rank uses it.
  EXPECT_EQ(ResolveDeviceIndex(by_rank, 3, 1), 0);
  EXPECT_EQ(ResolveDeviceIndex(ParseDeviceSpec("cuda:1"), 0, 2), 1);
  auto code = [](const DeviceSpec& s, int local_rank, int count) {
    try {
      ResolveDeviceIndex(s, local_rank, count);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kOk;
  };
  EXPECT_EQ(code(by_rank, 0, 0), ErrorCode::kUnavailable);  // no device at all
  EXPECT_EQ(code(by_rank, 5, 4), ErrorCode::kNotFound);     // more workers than GPUs
  EXPECT_EQ(code(ParseDeviceSpec("cuda:4"), 0, 4), ErrorCode::kNotFound);
}

// What `--device cuda` meets on a machine without a usable GPU: in a CPU build "built without
// CUDA" (kUnimplemented); in a CUDA build without a device, kUnavailable. Never a crash.
TEST(GpuDevice, EntryPointsWithoutADeviceFailClearly) {
  if (DeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present";
  const ErrorCode expected = BuiltWithCuda() ? ErrorCode::kUnavailable : ErrorCode::kUnimplemented;
  auto check = [&](const std::function<void()>& fn, const char* what) {
    try {
      fn();
      ADD_FAILURE() << what << " did not throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), expected) << what << ": " << e.what();
      if (!BuiltWithCuda()) {
        EXPECT_NE(std::string(e.what()).find("built without CUDA"), std::string::npos) << what;
      }
    }
  };
  check([] { SelectDevice(ParseDeviceSpec("cuda"), 0); }, "SelectDevice");
  check([] { CudaBackend({}); }, "CudaBackend");
  check([] { MakeNcclCommunicator(MakeSelfCommunicator(), {}, {}); }, "MakeNcclCommunicator");
  check([] { RequireDevice("test"); }, "RequireDevice");
}

TEST(GpuDevice, MissingDeviceIsNotFound) {
  if (!BuiltWithCuda()) GTEST_SKIP() << "CPU build";
  EXPECT_THROW(GetDeviceInfo(DeviceCount() + 3), Error);
}

}  // namespace
}  // namespace escala::gpu
