// The GPU entry points of a build without CUDA: each fails with a clear error instead of a
// missing symbol, so that CPU-only programs link and `--device cuda` explains itself.
#include "escala/core/error.h"
#include "escala/gpu/device.h"

namespace escala::gpu {
namespace {
[[noreturn]] void NoCuda(std::string_view what) {
  Throw(ErrorCode::kUnimplemented,
        "{}: escala was built without CUDA (configure with ESCALA_WITH_CUDA=ON where nvcc is "
        "installed)",
        what);
}
}  // namespace

bool BuiltWithCuda() {
  return false;
}
int DeviceCount() {
  return 0;
}
DeviceInfo GetDeviceInfo(int) {
  NoCuda("GetDeviceInfo");
}
std::vector<DeviceInfo> ListDevices() {
  return {};
}
void RequireDevice(std::string_view what) {
  NoCuda(what);
}
void VectorAdd(const float*, const float*, float*, std::size_t, int) {
  NoCuda("VectorAdd");
}

}  // namespace escala::gpu
