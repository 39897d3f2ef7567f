// Helpers for tests that run on a CUDA device: skipping without one, uploads and downloads,
// poisoned outputs, random inputs, and the error measures the tests state their bounds in.
#ifndef ESCALA_TESTS_UNIT_GPU_GPU_TEST_UTIL_H_
#define ESCALA_TESTS_UNIT_GPU_GPU_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cuda_runtime.h>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "escala/gpu/device.h"
#include "memory.h"

#define ESCALA_REQUIRE_GPU()                                                 \
  do {                                                                       \
    if (::escala::gpu::DeviceCount() == 0) GTEST_SKIP() << "no CUDA device"; \
    ::escala::gpu::internal::UseDevice(0);                                   \
  } while (false)

namespace escala::gpu::testing {

using internal::DeviceBuffer;

template <typename T>
DeviceBuffer<T> Upload(const std::vector<T>& v) {
  DeviceBuffer<T> d(0, std::max<std::size_t>(v.size(), 1));
  if (!v.empty()) {
    EXPECT_EQ(cudaMemcpy(d.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  return d;
}

template <typename T>
std::vector<T> Download(const DeviceBuffer<T>& d, std::size_t n) {
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<T> v(n);
  if (n > 0) {
    EXPECT_EQ(cudaMemcpy(v.data(), d.data(), n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  }
  return v;
}

// Fills a device buffer with NaN (all bits set), so that an element a kernel fails to write is
// caught by the comparison.
template <typename T>
DeviceBuffer<T> Poisoned(std::size_t n) {
  DeviceBuffer<T> d(0, std::max<std::size_t>(n, 1));
  EXPECT_EQ(cudaMemset(d.data(), 0xFF, d.bytes()), cudaSuccess);
  return d;
}

inline std::vector<float> Random(std::size_t n, std::uint64_t seed, float lo = -1.0f,
                                 float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// max_i |got - want| / max(|want|, floor): relative error, absolute below `floor`. NaN anywhere
// (an unwritten, poisoned element) gives infinity.
inline double MaxRelError(const std::vector<float>& got, const std::vector<double>& want,
                          double floor) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (!std::isfinite(got[i]) && std::isfinite(want[i])) {
      return std::numeric_limits<double>::infinity();
    }
    worst = std::max(worst, std::fabs(got[i] - want[i]) / std::max(std::fabs(want[i]), floor));
  }
  return worst;
}

inline std::vector<double> ToDouble(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace escala::gpu::testing

#endif  // ESCALA_TESTS_UNIT_GPU_GPU_TEST_UTIL_H_
