// GPU device discovery and selection, and a minimal device smoke test.
//
// This header carries no CUDA types, so it can be included by code compiled without nvcc. In a
// build without the CUDA backend (ESCALA_WITH_CUDA == 0 in escala/config.h) DeviceCount()
// returns 0 and every function that needs a device throws escala::Error with kUnimplemented and
// the message "escala was built without CUDA"; there are never missing symbols.
//
// Thread-safety: all functions may be called concurrently.
#ifndef ESCALA_GPU_DEVICE_H_
#define ESCALA_GPU_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace escala::gpu {

// Whether this build contains the CUDA backend.
bool BuiltWithCuda();

// Number of usable CUDA devices: 0 in a CPU-only build, without a driver, or without a device.
int DeviceCount();

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t total_memory_bytes = 0;
  int multiprocessors = 0;
};

// Throws kUnimplemented (CPU build) or kNotFound (no such device).
DeviceInfo GetDeviceInfo(int device);
std::vector<DeviceInfo> ListDevices();

// Throws kUnimplemented with a message that names `what` when the build has no CUDA, and
// kUnavailable when it has CUDA but no device is present.
void RequireDevice(std::string_view what);

// Which device a command runs on: "cpu", "cuda" (the device of this process's local rank) or
// "cuda:N" (device N).
struct DeviceSpec {
  bool cuda = false;
  int index = -1;  // -1: chosen from the local rank
};
// Throws kInvalidArgument for anything else, naming the text.
DeviceSpec ParseDeviceSpec(std::string_view text);

// The rule behind SelectDevice, without asking the driver: spec.index when given; otherwise the
// local rank when several devices are visible, and 0 when one is (a launcher that gives each
// process its own GPU through CUDA_VISIBLE_DEVICES). Throws kUnavailable for 0 devices and
// kNotFound for an index out of range. Two ranks on one GPU are refused later, by the NCCL
// communicator.
int ResolveDeviceIndex(const DeviceSpec& spec, int local_rank, int device_count);

// ResolveDeviceIndex with this machine's device count. Throws kUnimplemented in a CPU build.
int SelectDevice(const DeviceSpec& spec, int local_rank);

// out[i] = a[i] + b[i] computed on `device`; host pointers in and out. A smoke test of the whole
// path (allocation, copies, kernel launch, error checks).
void VectorAdd(const float* a, const float* b, float* out, std::size_t n, int device = 0);

}  // namespace escala::gpu

#endif  // ESCALA_GPU_DEVICE_H_
