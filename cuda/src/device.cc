#include "escala/gpu/device.h"

#include <algorithm>
#include <cuda_runtime.h>
#include <vector>

#include "cuda_check.h"
#include "kernels/kernels.h"
#include "memory.h"

namespace escala::gpu {

bool BuiltWithCuda() {
  return true;
}

int DeviceCount() {
  int n = 0;
  // No driver or no device is not an error here: it is the answer 0.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  return n;
}

DeviceInfo GetDeviceInfo(int device) {
  const int count = DeviceCount();
  ESCALA_CHECK(device >= 0 && device < count, kNotFound,
               "CUDA device {} does not exist ({} device(s) visible)", device, count);
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  DeviceInfo info;
  info.index = device;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.total_memory_bytes = prop.totalGlobalMem;
  info.multiprocessors = prop.multiProcessorCount;
  return info;
}

std::vector<DeviceInfo> ListDevices() {
  std::vector<DeviceInfo> out;
  const int n = DeviceCount();
  for (int i = 0; i < n; ++i) out.push_back(GetDeviceInfo(i));
  return out;
}

void RequireDevice(std::string_view what) {
  ESCALA_CHECK(DeviceCount() > 0, kUnavailable, "{}: no CUDA device is available", what);
}

int SelectDevice(const DeviceSpec& spec, int local_rank) {
  return ResolveDeviceIndex(spec, local_rank, DeviceCount());
}

void VectorAdd(const float* a, const float* b, float* out, std::size_t n, int device) {
  RequireDevice("VectorAdd");
  internal::UseDevice(device);
  if (n == 0) return;
  const std::size_t bytes = n * sizeof(float);
  internal::DeviceBuffer<float> da(device, n), db(device, n), dout(device, n);
  CUDA_CHECK(cudaMemcpy(da.data(), a, bytes, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(db.data(), b, bytes, cudaMemcpyHostToDevice));
  CUDA_CHECK(kernels::LaunchVectorAdd(da.data(), db.data(), dout.data(), n, nullptr));
  CUDA_CHECK(cudaMemcpy(out, dout.data(), bytes, cudaMemcpyDeviceToHost));
}

}  // namespace escala::gpu
